/*
 * snapwl: the guest write workload the snapshot tests verify. Every byte it writes is a pure
 * function of a record number (log mode) or of (block offset, generation) (blocks mode), so the
 * host can regenerate what a correct point-in-time copy must hold. The formats are mirrored byte
 * for byte in ../workload-format.ts; change both together.
 *
 * Build: gcc -static -O2 -Wall -Wextra -Werror -o snapwl snapwl.c   (libc only)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_RECORD_BYTES 128
#define LOG_NUMBER_OFF 5
#define LOG_PAYLOAD_OFF 22
#define LOG_PAYLOAD_LEN 96
#define LOG_CRC_OFF 119
#define BLOCK_HEADER_BYTES 40
#define BLOCK_CRC_OFF 36
#define SECTOR_BYTES 512
#define MAX_BLOCK_BYTES (1024u * 1024u)
#define MAX_BLOCKS (1u << 20)
/* Generations above this cannot come from a real run; a header claiming one is garbage. */
#define MAX_TRUSTED_GENERATION (UINT64_C(1) << 48)
#define REPAIR_FLAG (UINT64_C(1) << 63)

static const char LOG_ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char BLOCK_MAGIC[8] = {'S', 'N', 'A', 'P', 'W', 'L', 'B', '1'};

/* Static so the only heap allocation is the generation table. */
static uint8_t block_buf[MAX_BLOCK_BYTES];
static uint8_t read_buf[MAX_BLOCK_BYTES];
static uint32_t crc_table[256];

static void die(const char *what) {
  fprintf(stderr, "snapwl: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(const char *msg) {
  fprintf(stderr,
          "snapwl: %s\n"
          "usage: snapwl log <file> [--rate-kib N] [--fsync-every N] [--max-records N]\n"
          "       snapwl blocks <file> [--size-mib N] [--block-kib N] [--rate-kib N] [--fsync-every N]\n"
          "                            [--seed N] [--max-writes N]\n"
          "       snapwl lockstep <file> <file> [--rate-kib N] [--report-every N] [--max-records N]\n"
          "       snapwl idle\n",
          msg);
  exit(2);
}

/* CRC32C (Castagnoli, reflected 0x82F63B78); callers start from ~0 and invert at the end. */
static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_table[i] = c;
  }
}

static uint32_t crc_update(uint32_t state, const uint8_t *p, size_t n) {
  while (n--) state = crc_table[(state ^ *p++) & 0xff] ^ (state >> 8);
  return state;
}

static uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

static uint32_t mix_seed(uint64_t a, uint64_t b, uint32_t domain) {
  uint32_t h = fmix32(domain ^ (uint32_t)a);
  h = fmix32(h ^ (uint32_t)(a >> 32));
  h = fmix32(h ^ (uint32_t)b);
  h = fmix32(h ^ (uint32_t)(b >> 32));
  return h ? h : 0x9E3779B9u; /* xorshift must never hold 0 */
}

static uint32_t xorshift32(uint32_t x) {
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return x;
}

static void put_le(uint8_t *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static uint64_t parse_num(const char *s, uint64_t min, uint64_t max, const char *name) {
  char msg[128];
  if (s == NULL || *s < '0' || *s > '9') goto bad;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) goto bad;
  return (uint64_t)v;
bad:
  snprintf(msg, sizeof msg, "%s needs an integer in %" PRIu64 "..%" PRIu64, name, min, max);
  usage(msg);
  return 0;
}

/* ---- pacing: hold the average write rate near --rate-kib so emulated guests keep a free core ---- */
static struct timespec pace_start;
static uint64_t pace_bytes;
static uint64_t pace_rate_bytes;

static double seconds_since_start(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - pace_start.tv_sec) + (double)(now.tv_nsec - pace_start.tv_nsec) / 1e9;
}

static void pace(size_t bytes) {
  pace_bytes += bytes;
  double ahead = (double)pace_bytes / (double)pace_rate_bytes - seconds_since_start();
  if (ahead <= 0) return;
  struct timespec req = {(time_t)ahead, (long)((ahead - (double)(time_t)ahead) * 1e9)};
  while (nanosleep(&req, &req) != 0 && errno == EINTR) {
  }
}

static void durable(int fd, const char *mode, uint64_t n) {
  if (fsync(fd) != 0) die("fsync");
  printf("SNAPWL %s fsynced=%" PRIu64 "\n", mode, n);
  fflush(stdout);
}

/* ---- log mode: "SWL1 <n:16 hex> <96 payload chars> <crc32c:8 hex>\n" ---- */
static void build_record(uint8_t *r, uint64_t n) {
  char head[LOG_PAYLOAD_OFF + 1];
  snprintf(head, sizeof head, "SWL1 %016" PRIx64 " ", n);
  memcpy(r, head, LOG_PAYLOAD_OFF);
  uint32_t x = mix_seed(n, 0, 0x4C4F4731u);
  for (int i = 0; i < LOG_PAYLOAD_LEN; i++) {
    x = xorshift32(x);
    r[LOG_PAYLOAD_OFF + i] = (uint8_t)LOG_ALPHABET[x >> 26];
  }
  r[LOG_CRC_OFF - 1] = ' ';
  uint32_t crc = ~crc_update(~0u, r, LOG_CRC_OFF - 1);
  char tail[10];
  snprintf(tail, sizeof tail, "%08" PRIx32 "\n", crc);
  memcpy(r + LOG_CRC_OFF, tail, 9);
}

/* The record's number when it is byte-exactly record n, else 0. */
static uint64_t record_number(const uint8_t *r) {
  uint64_t n = 0;
  for (int i = 0; i < 16; i++) {
    uint8_t c = r[LOG_NUMBER_OFF + i];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return 0;
    n = (n << 4) | (uint64_t)d;
  }
  uint8_t expected[LOG_RECORD_BYTES];
  if (n == 0) return 0;
  build_record(expected, n);
  return memcmp(expected, r, LOG_RECORD_BYTES) == 0 ? n : 0;
}

/* Opens a log and resumes after its last whole valid record (a crash can leave a cut or unwritten tail). */
static uint64_t open_log(const char *file, int *fd_out) {
  int fd = open(file, O_RDWR | O_CREAT | O_APPEND, 0644);
  if (fd < 0) die(file);
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  uint64_t size = (uint64_t)st.st_size, last = 0;
  uint8_t rec[LOG_RECORD_BYTES];
  for (uint64_t k = size / LOG_RECORD_BYTES; k > 0; k--) {
    if (pread(fd, rec, LOG_RECORD_BYTES, (off_t)((k - 1) * LOG_RECORD_BYTES)) != LOG_RECORD_BYTES) die("pread");
    uint64_t n = record_number(rec);
    if (n == 0) continue;
    if (n != k) {
      fprintf(stderr, "snapwl: %s: record at offset %" PRIu64 " is number %" PRIu64 ", not %" PRIu64 "\n", file,
              (k - 1) * LOG_RECORD_BYTES, n, k);
      exit(1);
    }
    last = k;
    break;
  }
  if (last * LOG_RECORD_BYTES != size) {
    if (ftruncate(fd, (off_t)(last * LOG_RECORD_BYTES)) != 0) die("ftruncate");
    if (fsync(fd) != 0) die("fsync");
  }
  *fd_out = fd;
  return last;
}

static void append_record(int fd, uint64_t n) {
  uint8_t rec[LOG_RECORD_BYTES];
  build_record(rec, n);
  ssize_t w = write(fd, rec, LOG_RECORD_BYTES);
  if (w < 0) die("write");
  if (w != LOG_RECORD_BYTES) {
    fprintf(stderr, "snapwl: short write of record %" PRIu64 "\n", n);
    exit(1);
  }
}

static int run_log(const char *file, uint64_t fsync_every, uint64_t max_records) {
  int fd;
  uint64_t n = open_log(file, &fd);
  printf("SNAPWL log started resume=%" PRIu64 "\n", n);
  fflush(stdout);
  uint64_t unsynced = 0;
  for (uint64_t written = 0; max_records == 0 || written < max_records; written++) {
    append_record(fd, ++n);
    pace(LOG_RECORD_BYTES);
    if (++unsynced == fsync_every) {
      durable(fd, "log", n);
      unsynced = 0;
    }
  }
  if (unsynced) durable(fd, "log", n);
  return close(fd) == 0 ? 0 : 1;
}

/*
 * ---- lockstep mode: two logs (one per disk) in the log format, written in turn: record n appended and
 * fsynced to the first, then to the second, then n+1. So at any instant the first holds n or n+1 whole
 * records when the second holds n: two copies taken at one point in time obey that rule, two copies
 * taken at different moments of a running guest break it. The console line names records both hold.
 */
static int run_lockstep(const char *first, const char *second, uint64_t report_every, uint64_t max_records) {
  int fd1, fd2;
  uint64_t n1 = open_log(first, &fd1), n2 = open_log(second, &fd2);
  /* a crash between the two fsyncs: the second log catches up with the record in flight */
  if (n1 == n2 + 1) {
    append_record(fd2, ++n2);
    if (fsync(fd2) != 0) die("fsync");
  }
  if (n1 != n2) {
    fprintf(stderr, "snapwl: %s holds %" PRIu64 " records and %s %" PRIu64 ": not written in lockstep\n", first, n1, second, n2);
    exit(1);
  }
  uint64_t n = n1, unreported = 0;
  printf("SNAPWL lockstep started resume=%" PRIu64 "\n", n);
  fflush(stdout);
  for (uint64_t written = 0; max_records == 0 || written < max_records; written++) {
    ++n;
    append_record(fd1, n);
    if (fsync(fd1) != 0) die("fsync");
    append_record(fd2, n);
    if (fsync(fd2) != 0) die("fsync");
    pace(2 * LOG_RECORD_BYTES);
    if (++unreported == report_every) {
      printf("SNAPWL lockstep fsynced=%" PRIu64 "\n", n);
      fflush(stdout);
      unreported = 0;
    }
  }
  if (unreported) {
    printf("SNAPWL lockstep fsynced=%" PRIu64 "\n", n);
    fflush(stdout);
  }
  return close(fd1) == 0 && close(fd2) == 0 ? 0 : 1;
}

/* ---- blocks mode: header {magic, offset, generation, sequence, size, crc32c} + payload ---- */
static void build_block(uint8_t *b, uint64_t offset, uint64_t gen, uint64_t seq, uint32_t size) {
  memcpy(b, BLOCK_MAGIC, 8);
  put_le(b + 8, offset, 8);
  put_le(b + 16, gen, 8);
  put_le(b + 24, seq, 8);
  put_le(b + 32, size, 4);
  uint32_t x = mix_seed(offset, gen, 0x424C4B31u);
  for (uint32_t p = BLOCK_HEADER_BYTES; p < size; p += 4) {
    x = xorshift32(x);
    put_le(b + p, x, 4);
  }
  /* Each later sector names its generation, so a torn write shows which write each part came from. */
  for (uint32_t s = SECTOR_BYTES; s < size; s += SECTOR_BYTES) put_le(b + s, gen, 8);
  uint32_t crc = crc_update(~0u, b, BLOCK_CRC_OFF);
  crc = ~crc_update(crc, b + BLOCK_HEADER_BYTES, size - BLOCK_HEADER_BYTES);
  put_le(b + BLOCK_CRC_OFF, crc, 4);
}

static int all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

/*
 * Generation of an on-disk block: 0 if never written, its generation if whole, or the highest
 * generation any of its parts claims | REPAIR_FLAG when a crash tore it.
 */
static uint64_t recover_block(const uint8_t *b, uint64_t offset, uint32_t size, uint64_t *max_seq) {
  if (all_zero(b, size)) return 0;
  int magic = memcmp(b, BLOCK_MAGIC, 8) == 0 && get_le(b + 8, 8) == offset;
  uint64_t gen = get_le(b + 16, 8), seq = get_le(b + 24, 8);
  if (magic && gen > 0 && gen < MAX_TRUSTED_GENERATION && get_le(b + 32, 4) == size) {
    build_block(block_buf, offset, gen, seq, size);
    if (memcmp(block_buf, b, size) == 0) {
      if (seq > *max_seq) *max_seq = seq;
      return gen;
    }
  }
  uint64_t best = (magic && gen < MAX_TRUSTED_GENERATION) ? gen : 0;
  for (uint32_t s = SECTOR_BYTES; s < size; s += SECTOR_BYTES) {
    uint64_t g = get_le(b + s, 8);
    if (g < MAX_TRUSTED_GENERATION && g > best) best = g;
  }
  return best | REPAIR_FLAG;
}

static void write_block(int fd, uint64_t index, uint64_t gen, uint64_t seq, uint32_t size) {
  build_block(block_buf, index * size, gen, seq, size);
  ssize_t w = pwrite(fd, block_buf, size, (off_t)(index * size));
  if (w < 0) die("pwrite");
  if ((size_t)w != size) {
    fprintf(stderr, "snapwl: short write of block %" PRIu64 "\n", index);
    exit(1);
  }
}

static int run_blocks(const char *file, uint64_t size_mib, uint32_t block_bytes, uint64_t fsync_every, uint32_t seed,
                      uint64_t max_writes) {
  uint64_t target = size_mib << 20;
  if (target % block_bytes != 0) usage("--size-mib must be a whole number of blocks");
  uint64_t nblocks = target / block_bytes;
  if (nblocks > MAX_BLOCKS) usage("more than 1<<20 blocks");
  int fd = open(file, O_RDWR | O_CREAT, 0644);
  if (fd < 0) die(file);
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  uint64_t size = (uint64_t)st.st_size;
  if (size > target) {
    fprintf(stderr, "snapwl: %s is larger (%" PRIu64 " bytes) than --size-mib\n", file, size);
    exit(1);
  }
  uint64_t *gens = calloc(nblocks, sizeof *gens);
  if (gens == NULL) die("calloc");
  uint64_t have = size / block_bytes, seq = 0, repairs = 0;
  for (uint64_t i = 0; i < have; i++) {
    if (pread(fd, read_buf, block_bytes, (off_t)(i * block_bytes)) != (ssize_t)block_bytes) die("pread");
    gens[i] = recover_block(read_buf, i * block_bytes, block_bytes, &seq);
    if (gens[i] & REPAIR_FLAG) repairs++;
  }
  /* Real zeros rather than a sparse hole: the disk's blocks get allocated up front, like a database file. */
  if (have < nblocks) {
    if (ftruncate(fd, (off_t)(have * block_bytes)) != 0) die("ftruncate");
    memset(block_buf, 0, block_bytes);
    for (uint64_t i = have; i < nblocks; i++)
      if (pwrite(fd, block_buf, block_bytes, (off_t)(i * block_bytes)) != (ssize_t)block_bytes) die("pwrite");
    if (fsync(fd) != 0) die("fsync");
  }
  /* A block a crash tore stays torn until rewritten; rewrite it now so later snapshots see only whole blocks. */
  for (uint64_t i = 0; i < have && repairs > 0; i++) {
    if (!(gens[i] & REPAIR_FLAG)) continue;
    gens[i] = (gens[i] & ~REPAIR_FLAG) + 1;
    write_block(fd, i, gens[i], ++seq, block_bytes);
  }
  if (repairs > 0) durable(fd, "blocks", seq);
  printf("SNAPWL blocks started resume=%" PRIu64 "\n", seq);
  fflush(stdout);
  uint32_t x = mix_seed(seed, seq, 0x50494B31u);
  uint64_t unsynced = 0;
  for (uint64_t written = 0; max_writes == 0 || written < max_writes; written++) {
    x = xorshift32(x);
    uint64_t i = x % nblocks;
    write_block(fd, i, ++gens[i], ++seq, block_bytes);
    pace(block_bytes);
    if (++unsynced == fsync_every) {
      durable(fd, "blocks", seq);
      unsynced = 0;
    }
  }
  if (unsynced) durable(fd, "blocks", seq);
  free(gens);
  return close(fd) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2) usage("missing mode");
  const char *mode = argv[1];
  if (strcmp(mode, "idle") == 0) {
    if (argc != 2) usage("idle takes no arguments");
    printf("SNAPWL idle started\n");
    fflush(stdout);
    for (;;) sleep(3600);
  }
  int is_log = strcmp(mode, "log") == 0, is_lockstep = strcmp(mode, "lockstep") == 0;
  if (!is_log && !is_lockstep && strcmp(mode, "blocks") != 0) usage("unknown mode");
  if (argc < 3 || argv[2][0] == '\0' || argv[2][0] == '-') usage("missing file");
  int first_opt = 3;
  if (is_lockstep) {
    if (argc < 4 || argv[3][0] == '\0' || argv[3][0] == '-') usage("lockstep needs two files");
    first_opt = 4;
  }
  int is_blocks = !is_log && !is_lockstep;
  uint64_t rate_kib = 1024, fsync_every = 16, report_every = 16, max = 0, size_mib = 8, block_kib = 64, seed = 1;
  for (int i = first_opt; i < argc; i += 2) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(opt, "--rate-kib") == 0) rate_kib = parse_num(val, 1, UINT64_C(1) << 30, opt);
    else if (!is_lockstep && strcmp(opt, "--fsync-every") == 0) fsync_every = parse_num(val, 1, UINT64_C(1) << 20, opt);
    else if (is_lockstep && strcmp(opt, "--report-every") == 0) report_every = parse_num(val, 1, UINT64_C(1) << 20, opt);
    else if (!is_blocks && strcmp(opt, "--max-records") == 0) max = parse_num(val, 1, UINT64_C(1) << 40, opt);
    else if (is_blocks && strcmp(opt, "--max-writes") == 0) max = parse_num(val, 1, UINT64_C(1) << 40, opt);
    else if (is_blocks && strcmp(opt, "--size-mib") == 0) size_mib = parse_num(val, 1, 1 << 16, opt);
    else if (is_blocks && strcmp(opt, "--block-kib") == 0) block_kib = parse_num(val, 1, MAX_BLOCK_BYTES / 1024, opt);
    else if (is_blocks && strcmp(opt, "--seed") == 0) seed = parse_num(val, 0, UINT32_MAX, opt);
    else usage("unknown option");
  }
  crc_init();
  pace_rate_bytes = rate_kib * 1024;
  clock_gettime(CLOCK_MONOTONIC, &pace_start);
  if (is_log) return run_log(argv[2], fsync_every, max);
  if (is_lockstep) return run_lockstep(argv[2], argv[3], report_every, max);
  return run_blocks(argv[2], size_mib, (uint32_t)(block_kib * 1024), fsync_every, (uint32_t)seed, max);
}
