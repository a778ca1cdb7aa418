/* Restorer last stage (no libc). Fixed entry points at the start of the blob:
 *   offset 0: entry, called with %rdi = RestoreArgs* on a stack inside the blob region
 *   offset 8: a `syscall` instruction the keeper points a thread at to run one system call
 *             (used to unmap the blob region itself once every thread is parked)
 */
        .section .text.entry,"ax",@progbits
        .globl vos_blob_entry
vos_blob_entry:
        /* call, not jmp: the C++ code expects the ABI's %rsp = 8 (mod 16) at function entry and
         * may keep SSE values in 16-byte aligned stack slots (the stack top is 16-aligned). */
        call vos_restore_main
        .balign 8
        .globl vos_blob_syscall_insn
vos_blob_syscall_insn:
        syscall
        ud2

/* long vos_blob_clone_thread(struct clone_args* args, size_t size, void (*fn)(void*), void* arg)
 * clone3 for a new thread: the child starts on args->stack and calls fn(arg), never returning. */
        .text
        .globl vos_blob_clone_thread
        .hidden vos_blob_clone_thread
vos_blob_clone_thread:
        mov %rdx, %r8
        mov %rcx, %r9
        mov $435, %eax
        syscall
        test %rax, %rax
        jnz 1f
        xor %ebp, %ebp
        mov %r9, %rdi
        call *%r8
        ud2
1:      ret

/* [[noreturn]] void vos_blob_park(void): stop here for the keeper (SIGTRAP), forever. */
        .globl vos_blob_park
        .hidden vos_blob_park
vos_blob_park:
        int3
        jmp vos_blob_park
        .section .note.GNU-stack,"",@progbits
