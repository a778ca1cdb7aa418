/*
 * fresh_read [--uffd-copy] FILE...
 *
 * Baselines for restore speed: the files' bytes (already in the page cache) put into freshly
 * mapped anonymous memory, split over one thread per CPU; prints "ms=<wall time>". This is what
 * any loader pays to have the image's bytes in new memory, with no checkpoint tool involved:
 * in a VM whose fresh memory is slow to touch it is far above a plain page-cache read (cat),
 * which reuses one small buffer.
 *
 * Default: MADV_POPULATE_WRITE, then pread (the kernel clears each page, then the read fills it).
 * --uffd-copy: the memory is registered with a missing-page userfaultfd and filled with
 * UFFDIO_COPY from a read-only mapping of the files, the way vos fills 4 KiB-page memory: the
 * kernel allocates each page and copies into it once. It is the floor for any restore into
 * 4 KiB pages (no checksum, no process to build), so vos's restore is compared with it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

enum { kMaxFiles = 64, kMaxThreads = 64 };

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

struct piece {
  int fd;
  off_t offset;
  char* to;
  size_t len;
  const char* mapped; /* --uffd-copy: the whole file, read-only */
};

struct job {
  struct piece* pieces;
  int npieces;
  size_t from, to; /* byte range of the concatenated files this thread reads */
  int uffd;        /* >= 0: fill with UFFDIO_COPY through it */
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void fill_by_read(const struct piece* p, size_t begin, size_t end) {
  madvise(p->to + begin, end - begin, MADV_POPULATE_WRITE);
  size_t done = begin;
  while (done < end) {
    ssize_t r = pread(p->fd, p->to + done, end - done, p->offset + (off_t)done);
    if (r <= 0) {
      perror("pread");
      exit(1);
    }
    done += (size_t)r;
  }
}

static void fill_by_uffd_copy(int uffd, const struct piece* p, size_t begin, size_t end) {
  const size_t step = 1 << 20;
  for (size_t at = begin; at < end; at += step) {
    size_t len = end - at < step ? end - at : step;
    struct uffdio_copy copy = {.dst = (unsigned long)(p->to + at),
                               .src = (unsigned long)(p->mapped + at),
                               .len = (len + 4095) & ~(size_t)4095};
    if (ioctl(uffd, UFFDIO_COPY, &copy) != 0) {
      perror("UFFDIO_COPY");
      exit(1);
    }
  }
}

static void* read_range(void* arg) {
  struct job* j = arg;
  size_t pos = 0;
  for (int i = 0; i < j->npieces; i++) {
    struct piece* p = &j->pieces[i];
    size_t begin = j->from > pos ? j->from - pos : 0;
    size_t end = j->to - pos < p->len ? j->to - pos : p->len;
    if (j->to > pos && begin < end) {
      if (j->uffd >= 0) {
        fill_by_uffd_copy(j->uffd, p, begin, end);
      } else {
        fill_by_read(p, begin, end);
      }
    }
    pos += p->len;
  }
  return NULL;
}

static int uffd_over(char* mem, size_t len) {
  int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
  struct uffdio_api api = {.api = UFFD_API};
  struct uffdio_register reg = {.range = {(unsigned long)mem, len},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0 || ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
    perror("userfaultfd");
    exit(1);
  }
  return uffd;
}

int main(int argc, char** argv) {
  int by_uffd = argc > 1 && strcmp(argv[1], "--uffd-copy") == 0;
  char** files = argv + 1 + by_uffd;
  int nfiles = argc - 1 - by_uffd;
  if (nfiles < 1 || nfiles > kMaxFiles) {
    fprintf(stderr, "usage: fresh_read [--uffd-copy] FILE... (at most %d)\n", kMaxFiles);
    return 2;
  }
  struct piece pieces[kMaxFiles];
  size_t total = 0;
  for (int i = 0; i < nfiles; i++) {
    int fd = open(files[i], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      perror(files[i]);
      return 1;
    }
    /* UFFDIO_COPY works in whole pages; the mapping of a file's last page reads zeros past EOF. */
    size_t len = by_uffd ? ((size_t)st.st_size + 4095) & ~(size_t)4095 : (size_t)st.st_size;
    const char* mapped = NULL;
    if (by_uffd && len > 0) {
      mapped = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
      if (mapped == MAP_FAILED) {
        perror("mmap");
        return 1;
      }
    }
    pieces[i] = (struct piece){fd, 0, NULL, len, mapped};
    total += len;
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int nthreads = cpus < 1 ? 1 : cpus > kMaxThreads ? kMaxThreads : (int)cpus;
  double start = now_ms();
  char* mem =
      mmap(NULL, total ? total : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  int uffd = by_uffd && total > 0 ? uffd_over(mem, total) : -1;
  size_t at = 0;
  for (int i = 0; i < nfiles; i++) {
    pieces[i].to = mem + at;
    at += pieces[i].len;
  }
  pthread_t threads[kMaxThreads];
  struct job jobs[kMaxThreads];
  size_t share = (total / (size_t)nthreads + 4095) & ~(size_t)4095;
  for (int t = 0; t < nthreads; t++) {
    size_t from = share * (size_t)t < total ? share * (size_t)t : total;
    size_t to = from + share < total ? from + share : total;
    jobs[t] = (struct job){pieces, nfiles, from, to, uffd};
    pthread_create(&threads[t], NULL, read_range, &jobs[t]);
  }
  for (int t = 0; t < nthreads; t++) {
    pthread_join(threads[t], NULL);
  }
  printf("ms=%.3f\nbytes=%zu\nthreads=%d\n", now_ms() - start, total, nthreads);
  return 0;
}
