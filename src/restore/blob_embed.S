/* Host side: the restorer's last stage, built as a flat binary, carried inside vos. */
        .section .rodata
        .balign 4096
        .globl vos_blob_start
vos_blob_start:
        .incbin VOS_BLOB_BIN
        .globl vos_blob_end
vos_blob_end:
        .section .note.GNU-stack,"",@progbits
