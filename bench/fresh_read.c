/*
 * fresh_read FILE...
 *
 * Baseline for restore speed: reads the files (already in the page cache) into freshly mapped
 * anonymous memory, split over one thread per CPU, and prints "ms=<wall time>". This is what
 * any loader pays to have the image's bytes in new memory, with no checkpoint tool involved:
 * in a VM whose fresh memory is slow to touch it is far above a plain page-cache read (cat),
 * which reuses one small buffer.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

enum { kMaxFiles = 64, kMaxThreads = 64 };

struct piece {
  int fd;
  off_t offset;
  char* to;
  size_t len;
};

struct job {
  struct piece* pieces;
  int npieces;
  size_t from, to; /* byte range of the concatenated files this thread reads */
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void* read_range(void* arg) {
  struct job* j = arg;
  size_t pos = 0;
  for (int i = 0; i < j->npieces; i++) {
    struct piece* p = &j->pieces[i];
    size_t begin = j->from > pos ? j->from - pos : 0;
    size_t end = j->to - pos < p->len ? j->to - pos : p->len;
    if (j->to > pos && begin < end) {
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
    pos += p->len;
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2 || argc - 1 > kMaxFiles) {
    fprintf(stderr, "usage: fresh_read FILE... (at most %d)\n", kMaxFiles);
    return 2;
  }
  struct piece pieces[kMaxFiles];
  size_t total = 0;
  for (int i = 1; i < argc; i++) {
    int fd = open(argv[i], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      perror(argv[i]);
      return 1;
    }
    pieces[i - 1] = (struct piece){fd, 0, NULL, (size_t)st.st_size};
    total += (size_t)st.st_size;
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int nthreads = cpus < 1 ? 1 : cpus > kMaxThreads ? kMaxThreads : (int)cpus;
  double start = now_ms();
  char* mem = mmap(NULL, total ? total : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (mem == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  size_t at = 0;
  for (int i = 0; i < argc - 1; i++) {
    pieces[i].to = mem + at;
    at += pieces[i].len;
  }
  pthread_t threads[kMaxThreads];
  struct job jobs[kMaxThreads];
  size_t share = (total / (size_t)nthreads + 4095) & ~(size_t)4095;
  for (int t = 0; t < nthreads; t++) {
    size_t from = share * (size_t)t < total ? share * (size_t)t : total;
    size_t to = from + share < total ? from + share : total;
    jobs[t] = (struct job){pieces, argc - 1, from, to};
    pthread_create(&threads[t], NULL, read_range, &jobs[t]);
  }
  for (int t = 0; t < nthreads; t++) {
    pthread_join(threads[t], NULL);
  }
  printf("ms=%.3f\nbytes=%zu\nthreads=%d\n", now_ms() - start, total, nthreads);
  return 0;
}
