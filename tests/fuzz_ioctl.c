// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded fuzzer for every entry point of /dev/cowsnap: the twelve ioctls
 * and malformed ones (type 0xC5 with wrong numbers, sizes and directions,
 * other types, cowsnap's own on snapshot fds), open/close/dup,
 * read/write/pread/pwrite/lseek on handles and snapshot fds,
 * mmap/munmap/mremap/madvise/mprotect, and loads and stores through live
 * and snapshot mappings; from one process, or from up to three that share
 * handles and mappings across fork(), one perhaps running as uid 65534 or
 * short of fds.  Arguments come from the edges: invalid, 63-, 64-byte,
 * unterminated, non-ASCII names; live, deleted, never-taken, 0 and huge
 * ids; counts 0, 1, huge; bad flags, reserved fields, modes and sizes;
 * structs that are NULL, unmapped, read-only, kernel or non-canonical
 * addresses, straddling into an unmapped page, inside a live mapping or a
 * read-only snapshot mapping.  40% of the calls are valid throughout, to
 * reach the deep paths.
 *
 * What it proves:
 *  - every call returns success or an errno documented for it (README's
 *    API table; the VFS and mm rules for the syscalls: op_table below);
 *  - where the model knows the state (regions no other process can reach)
 *    the exact outcome: what must fail fails, what must succeed succeeds;
 *    failed CREATE/CLONE create no name, failed SNAP_CREATE no snapshot
 *    (ids come out 1, 2, 3...; everywhere they strictly increase per
 *    region); INFO, SNAP_LIST, DIFF, read, write and lseek report what
 *    the model predicts; in-bounds accesses fault only as the protection
 *    says, never SIGBUS;
 *  - snapshots never change: their contents are hashed when taken (from
 *    the live view) or first read, checked on every later read, after a
 *    RESTORE the live view hashes like the snapshot, and stores through
 *    every mapping right after SNAP_CREATE must not reach the snapshot;
 *  - after every epoch (EPOCH_CALLS calls) everything is unmapped, closed
 *    and destroyed and /proc/cowsnap shows no region, snapshot or page.
 * The kernel log must stay clean (check.sh).
 *
 * fuzz_fixed_seed runs COWSNAP_FUZZ_CALLS calls (default 100000) from a
 * fixed seed; fuzz_random_seed runs 20000 from a time-based seed it prints.
 * Epochs depend on the seed and their number only, so one replays alone:
 * COWSNAP_SEED=SEED[:EPOCH[:trace][:paranoid]] (see fuzz_random_seed).
 * Single-process epochs replay exactly; with forked workers each worker's
 * choices replay, their interleaving does not.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <grp.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define TH_TIMEOUT 600	/* per test; the guest allows 900 s a program */
#include "harness.h"
#include "util.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE	0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC		0x80000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif
#ifndef MADV_COLD
#define MADV_COLD		20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT		21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED	24
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif

#define FIXED_SEED	0xc05a9f00d1ceULL
#define FIXED_CALLS	100000
#define RANDOM_CALLS	20000
#define EPOCH_CALLS	2500

#define NSLOT		6	/* own names; the last is 63 bytes */
#define NREG		24	/* region records */
#define NOFD		6	/* open files of /dev/cowsnap */
#define NFD		12	/* handles, their dups, snapshot fds */
#define NMAP		12	/* tracked mappings */
#define NIDS		40	/* snapshot ids tracked per region */
#define NRING		6	/* recent calls shown with a failure */
#define HASH_CAP	(256 * 1024)	/* largest region it hashes */
#define MAXPRINT	24	/* failures printed in full per run */

#define ARENA_SIZE	(24 * PG)	/* scratch, then an unmapped page */
#define ARENA_HALF	(ARENA_SIZE / 2)
#define RO_SIZE		(4 * PG)	/* read-only view of a memfd */
#define BASE_ADDR	0x200000000UL	/* far below mmap()'s choices */
#define LAND_ADDR	(BASE_ADDR + (1UL << 30))
#define LAND_SLOTS	6		/* MAP_FIXED, MREMAP_FIXED targets */
#define MAP_CAP		(64UL << 20)	/* longest mapping made */
#define LAND_STRIDE	(MAP_CAP + (16UL << 20))
#define POP_CAP		(1UL << 20)	/* longest range populated */
#define USER_SURE	0x7fffffffe000ULL	/* access_ok() passes below */
#define USER_MAX56	0xfffffffffff000ULL	/* fails above (LA57) */
#define MAX_RW		0x7ffff000ULL	/* MAX_RW_COUNT */
#define TB16		(16ULL << 40)

/* ---------------------------------------------------------------- */
/* Operations and their documented errnos.                          */

enum {
	OP_OPEN, OP_CLOSE, OP_DUP, OP_API, OP_CREATE, OP_ATTACH, OP_DESTROY,
	OP_INFO, OP_SNAP_CREATE, OP_SNAP_LIST, OP_SNAP_DELETE, OP_SNAP_OPEN,
	OP_RESTORE, OP_DIFF, OP_CLONE, OP_BADCMD, OP_READ, OP_WRITE, OP_LSEEK,
	OP_MMAP, OP_MUNMAP, OP_MREMAP, OP_MADVISE, OP_MPROTECT, OP_TOUCH,
	NOPS
};

static const char *const op_name[NOPS] = {
	"open", "close", "dup", "API", "CREATE", "ATTACH", "DESTROY", "INFO",
	"SNAP_CREATE", "SNAP_LIST", "SNAP_DELETE", "SNAP_OPEN", "RESTORE",
	"DIFF", "CLONE", "bad-ioctl", "read", "write", "lseek", "mmap",
	"munmap", "mremap", "madvise", "mprotect", "touch",
};

static const unsigned int op_weight[NOPS] = {
	[OP_OPEN] = 25, [OP_CLOSE] = 20, [OP_DUP] = 8, [OP_API] = 8,
	[OP_CREATE] = 60, [OP_ATTACH] = 40, [OP_DESTROY] = 35, [OP_INFO] = 40,
	[OP_SNAP_CREATE] = 70, [OP_SNAP_LIST] = 35, [OP_SNAP_DELETE] = 45,
	[OP_SNAP_OPEN] = 35, [OP_RESTORE] = 45, [OP_DIFF] = 35, [OP_CLONE] = 25,
	[OP_BADCMD] = 50, [OP_READ] = 55, [OP_WRITE] = 60, [OP_LSEEK] = 25,
	[OP_MMAP] = 60, [OP_MUNMAP] = 25, [OP_MREMAP] = 20, [OP_MADVISE] = 30,
	[OP_MPROTECT] = 20, [OP_TOUCH] = 80,
};

/* errno sets as bit masks; EOVERFLOW and EOPNOTSUPP get the top bits. */
static inline uint64_t EB(int e)
{
	if (e == EOVERFLOW)
		return 1ULL << 62;
	if (e == EOPNOTSUPP)
		return 1ULL << 63;
	return e > 0 && e < 62 ? 1ULL << e : 1;	/* bit 0: in no table */
}

#define E2(a, b)		(EB(a) | EB(b))
#define E3(a, b, c)		(E2(a, b) | EB(c))
#define E4(a, b, c, d)		(E2(a, b) | E2(c, d))

/*
 * What may each call return?  README "The API" for the ioctls (EBADF for a
 * bad fd and ENOTTY for an unknown command or a snapshot fd come from the
 * VFS; ENOMEM wherever memory is allocated; EMFILE/ENFILE where an fd is
 * made).  For the syscalls the VFS and mm rules (man 2) as they apply to a
 * character device whose ->mmap refuses MAP_PRIVATE and growth.
 */
static uint64_t op_table[NOPS];

static void tables_init(void)
{
	uint64_t ioc = E2(EBADF, ENOTTY);

	op_table[OP_OPEN] = E4(EACCES, EMFILE, ENFILE, ENOMEM);
	op_table[OP_CLOSE] = 0;
	op_table[OP_DUP] = E2(EMFILE, EBADF);
	op_table[OP_API] = ioc | E2(EFAULT, EINVAL);
	/* ENAMETOOLONG: a name or label without its NUL. */
	op_table[OP_CREATE] = ioc | E3(EFAULT, EINVAL, E2BIG) |
			      E4(EBUSY, EEXIST, ENOMEM, ENAMETOOLONG);
	op_table[OP_ATTACH] = ioc | E3(EFAULT, EINVAL, EBUSY) |
			      E3(ENOENT, EACCES, ENAMETOOLONG);
	op_table[OP_DESTROY] = ioc | E4(EFAULT, EINVAL, ENOENT, EPERM) |
			       EB(ENAMETOOLONG);
	op_table[OP_INFO] = ioc | E2(EINVAL, EFAULT);
	op_table[OP_SNAP_CREATE] = ioc | E3(EINVAL, EACCES, EFAULT) |
				   E3(ENOSPC, ENOMEM, ENAMETOOLONG);
	op_table[OP_SNAP_LIST] = ioc | E3(EINVAL, EFAULT, ENOMEM);
	op_table[OP_SNAP_DELETE] = ioc | E4(EINVAL, EACCES, EFAULT, ENOENT);
	op_table[OP_SNAP_OPEN] = ioc | E4(EINVAL, EFAULT, ENOENT, EMFILE) |
				 E2(ENFILE, ENOMEM);
	op_table[OP_RESTORE] = ioc | E3(EINVAL, EACCES, EFAULT) |
			       E3(ENOENT, EXDEV, ENOMEM);
	op_table[OP_DIFF] = ioc | E4(EINVAL, EFAULT, ENOENT, ENOMEM);
	op_table[OP_CLONE] = ioc | E3(EINVAL, EACCES, EFAULT) |
			     E4(EEXIST, ENOENT, ENOMEM, ENAMETOOLONG);
	op_table[OP_BADCMD] = ioc;
	op_table[OP_READ] = E3(EBADF, EINVAL, EFAULT);
	op_table[OP_WRITE] = E3(EBADF, EINVAL, EFAULT) | E2(ENOSPC, ENOMEM);
	op_table[OP_LSEEK] = E2(EBADF, EINVAL);
	op_table[OP_MMAP] = E3(EBADF, EINVAL, EACCES) |
			    E4(ENOMEM, EOVERFLOW, EPERM, EEXIST) |
			    E2(EAGAIN, EOPNOTSUPP);
	/* munmap(2): ENOMEM if a split would exceed the mapping count. */
	op_table[OP_MUNMAP] = E2(EINVAL, ENOMEM);
	op_table[OP_MREMAP] = E4(EINVAL, ENOMEM, EFAULT, EAGAIN);
	op_table[OP_MADVISE] = E4(EINVAL, ENOMEM, EAGAIN, EACCES) |
			       E4(EBADF, ENODEV, EOPNOTSUPP, EFAULT) |
			       EB(EPERM);
	op_table[OP_MPROTECT] = E3(EACCES, EINVAL, ENOMEM);
	op_table[OP_TOUCH] = 0;
}

/* ---------------------------------------------------------------- */
/* The model of what this process holds.                            */

enum { OS_UNATT, OS_ATT, OS_UNKNOWN };
enum { FD_NONE, FD_HANDLE, FD_SNAP };
enum { MK_LIVE = 1, MK_SNAP };

/* A region object this process reached (created, attached, learned). */
struct region {
	bool used;
	bool exact;	/* no other process can reach it: snapshots known */
	bool mine;	/* named in our namespace: name, mode, uid known */
	bool destroyed;	/* (mine) its name is gone */
	char name[64];
	uint64_t size;	/* bytes; 0: unknown */
	unsigned int mode;
	uid_t uid;
	uint64_t next_id;	/* exact: the id of the next snapshot */
	uint64_t last_id;	/* newest id this process saw created */
	int nids;
	uint64_t ids[NIDS];	/* live, ascending; a hint unless exact */
	uint64_t hash[NIDS];	/* of their contents, 0: unknown */
	char labels[NIDS][64];
};

/* An open file description of /dev/cowsnap. */
struct ofd {
	bool used;
	int acc;	/* O_RDONLY, O_WRONLY or O_RDWR */
	int state;
	int reg;	/* OS_ATT: region record, -1: unknown region */
	bool shared;	/* another process has it: state and pos may move */
	int64_t pos;
};

struct fdent {
	int fd;		/* -1: free */
	int kind;
	int ofd;	/* FD_HANDLE */
	int reg;	/* FD_SNAP: region record, -1: unknown */
	uint64_t size;	/* FD_SNAP: bytes, 0: unknown */
	uint64_t id;
	bool shared;	/* FD_SNAP: another process has it */
	int64_t pos;	/* FD_SNAP */
};

struct map {
	bool used;
	char *addr;
	size_t len;
	uint64_t off;	/* file offset of addr */
	int kind;
	int prot;
	int reg;
	bool pristine;	/* one mapping exactly as the model says */
	bool maywrite;	/* mprotect(PROT_WRITE) allowed */
	bool dontfork;	/* MADV_DONTFORK on some part */
};

static struct region R[NREG];
static struct ofd O[NOFD];
static struct fdent F[NFD];
static struct map M[NMAP];
static char slot_name[NSLOT][64];
static int slot_reg[NSLOT];
static char foreign[NSLOT][64];
static int nforeign;

/* Per process. */
static struct {
	const char *test;
	uint64_t seed;		/* of the run */
	unsigned int epoch, worker;
	uint64_t rng, seq, calls;
	bool trace;		/* print every call */
	bool paranoid;		/* re-check snapshots after each call */
	bool nobody;		/* running as uid 65534 */
	bool ns_private;	/* no other process attaches our names */
	uint64_t op_calls[NOPS], op_ok[NOPS], errs[64];
} S;

/* This call's arguments are all valid: reach the deep paths more often. */
static bool clean;

/* Shared by every worker of a run. */
#define NKINDS	32

struct stats {
	uint64_t calls, failures, printed, epochs, forked, swept;
	struct {		/* failures by kind: message, call, errno */
		const char *fmt;
		int op, err;
		uint64_t n;
		char text[160];
	} kinds[NKINDS];
	uint64_t op_calls[NOPS], op_ok[NOPS], errs[64];
	char first[512];
};
static struct stats *st;

static char *arena, *hole, *ro, *ro_rw;
static uint64_t max_region_size = TB16;
static unsigned int max_snapshots = 4096;
static unsigned int dev_mode = 0600;

/* ---------------------------------------------------------------- */
/* Random numbers (xorshift64*), reproducible per worker.            */

static uint64_t rnd(void)
{
	S.rng ^= S.rng >> 12;
	S.rng ^= S.rng << 25;
	S.rng ^= S.rng >> 27;
	return S.rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t rn(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned int pct)
{
	return rn(100) < pct;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return (x ^ (x >> 31)) | 1;
}

/* ---------------------------------------------------------------- */
/* Deliberate accesses to memory that may fault.                    */

static sigjmp_buf touch_jb;
static volatile sig_atomic_t touch_armed;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	if (touch_armed) {
		touch_armed = 0;
		siglongjmp(touch_jb, sig);
	}
	signal(sig, SIG_DFL);	/* not ours: refault and die */
}

static volatile char *gc_dst;
static const volatile char *gc_src;
static size_t gc_n;

/* Copy @n bytes; 0, or the signal the access raised. */
static int guarded_copy(void *dst, const void *src, size_t n)
{
	int sig;

	gc_dst = dst;
	gc_src = src;
	gc_n = n;
	sig = sigsetjmp(touch_jb, 0);
	if (sig)
		return sig;
	touch_armed = 1;
	while (gc_n--)
		*gc_dst++ = *gc_src++;
	touch_armed = 0;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Calls, expectations and reports.                                 */

/* Pointer classes. */
enum {
	PC_GOOD, PC_RO, PC_LIVE, PC_LIVE_RO, PC_SNAPMAP, PC_PROTNONE, PC_NULL,
	PC_LOW, PC_KERNEL, PC_NONCANON, PC_STRADDLE, PC_HOLE, PC_TOP, PC_JUNK,
	NPC
};

static const char *const pc_name[NPC] = {
	"scratch", "read-only", "live-map", "live-map-ro", "snapshot-map",
	"prot-none-map", "NULL", "low", "kernel", "non-canonical",
	"straddles-unmapped", "unmapped", "straddles-user-top", "junk",
};

struct target {
	int fi;		/* index in F, -1: a bad fd */
	int fd;
	int kind;
	int oi;		/* FD_HANDLE: index in O */
	int ri;		/* region record of the handle/snapshot fd, -1 */
	int att;	/* handle attached: 0, 1, -1 unknown */
	bool rd, wr;	/* opened for reading, writing */
};

struct call {
	uint64_t seq;
	int op;
	const char *var;
	struct target t;
	unsigned long cmd;
	int pc, pc2;
	uint64_t ptr, ptr2;
	uint64_t a[5];
	unsigned char img[160];	/* the struct as the kernel reads it */
	unsigned int imglen;
	long ret;
	int err;
};

/*
 * The outcome the model predicts: reasons to fail that apply for sure
 * (@must: the call must fail, with one of @must|@maybe) or may apply
 * (@maybe); @only: must fail with exactly one of these (EBADF, ENOTTY);
 * @any: the model cannot tell (any documented result).
 */
struct expect {
	uint64_t must, maybe, only;
	bool any;
};

static struct call ring[NRING];

static const char *errname(int e)
{
	static const char *const n[] = {
		[EPERM] = "EPERM", [ENOENT] = "ENOENT", [EINTR] = "EINTR",
		[EIO] = "EIO", [ENXIO] = "ENXIO", [E2BIG] = "E2BIG",
		[EBADF] = "EBADF", [EAGAIN] = "EAGAIN", [ENOMEM] = "ENOMEM",
		[EACCES] = "EACCES", [EFAULT] = "EFAULT", [EBUSY] = "EBUSY",
		[EEXIST] = "EEXIST", [EXDEV] = "EXDEV", [ENODEV] = "ENODEV",
		[EINVAL] = "EINVAL", [ENFILE] = "ENFILE", [EMFILE] = "EMFILE",
		[ENOTTY] = "ENOTTY", [ENOSPC] = "ENOSPC", [ESPIPE] = "ESPIPE",
		[ERANGE] = "ERANGE", [ENAMETOOLONG] = "ENAMETOOLONG",
	};

	if (e == EOVERFLOW)
		return "EOVERFLOW";
	if (e == EOPNOTSUPP)
		return "EOPNOTSUPP";
	if (e > 0 && e < (int)(sizeof(n) / sizeof(n[0])) && n[e])
		return n[e];
	return "E?";
}

static int errset(char *b, size_t n, uint64_t set)
{
	int k = 0, e;

	for (e = 1; e < 200 && (size_t)k < n; e++)
		if ((e < 62 || e == EOVERFLOW || e == EOPNOTSUPP) &&
		    (set & EB(e)) && EB(e) != 1)
			k += snprintf(b + k, n - k, "%s%s", k ? "|" : "",
				      errname(e));
	if (!k)
		k = snprintf(b, n, "-");
	return k;
}

/* Printable form of a name buffer. */
static int fmt_name(char *b, size_t n, const unsigned char *s)
{
	int k = snprintf(b, n, "\"");
	size_t i, len = strnlen((const char *)s, 64);

	for (i = 0; i < len && (size_t)k < n - 8; i++)
		k += snprintf(b + k, n - k,
			      s[i] >= 0x21 && s[i] < 0x7f && s[i] != '"' ?
			      "%c" : "\\x%02x", s[i]);
	k += snprintf(b + k, n - k, "\"%s", len == 64 ? "(no NUL)" : "");
	return k;
}

#define FMT(...) (k += snprintf(b + k, n > (size_t)k ? n - k : 0, __VA_ARGS__))

static int fmt_target(char *b, size_t n, const struct target *t)
{
	static const char *const st_name[] = { "unattached", "attached",
					       "unknown" };
	int k = 0;

	FMT("fd %d ", t->fd);
	if (t->kind == FD_NONE)
		FMT("(bad fd)");
	else if (t->kind == FD_SNAP)
		FMT("(snapshot fd of region rec %d)", t->ri);
	else
		FMT("(handle %s, %s%s, rec %d)",
		    O[t->oi].acc == O_RDWR ? "O_RDWR" :
		    O[t->oi].acc == O_RDONLY ? "O_RDONLY" : "O_WRONLY",
		    st_name[t->att < 0 ? 2 : t->att],
		    O[t->oi].shared ? ", shared" : "", t->ri);
	if (t->ri >= 0 && R[t->ri].used)
		FMT(" [%s size %llu%s%s nids %d next %llu]",
		    R[t->ri].name[0] ? R[t->ri].name : "?",
		    (unsigned long long)R[t->ri].size,
		    R[t->ri].exact ? " exact" : "",
		    R[t->ri].destroyed ? " destroyed" : "", R[t->ri].nids,
		    (unsigned long long)R[t->ri].next_id);
	return k;
}

/* The struct an ioctl passed, field by field. */
static int fmt_img(char *b, size_t n, const struct call *c)
{
	const unsigned char *p = c->img;
	char nm[300];
	int k = 0;

	if (!c->imglen)
		return 0;
	switch (c->op) {
	case OP_API: {
		const struct cowsnap_api *a = (const void *)p;

		FMT("{api %u reserved %#x}", a->api, a->reserved);
		break;
	}
	case OP_CREATE: {
		const struct cowsnap_create *a = (const void *)p;

		fmt_name(nm, sizeof(nm), (const void *)a->name);
		FMT("{name %s size %#llx mode %#o flags %#x reserved %#llx %#llx}",
		    nm, (unsigned long long)a->size, a->mode, a->flags,
		    (unsigned long long)a->reserved[0],
		    (unsigned long long)a->reserved[1]);
		break;
	}
	case OP_ATTACH:
	case OP_DESTROY: {
		const struct cowsnap_name *a = (const void *)p;

		fmt_name(nm, sizeof(nm), (const void *)a->name);
		FMT("{name %s flags %#x reserved %#x}", nm, a->flags,
		    a->reserved);
		break;
	}
	case OP_SNAP_CREATE: {
		const struct cowsnap_snap_create *a = (const void *)p;

		fmt_name(nm, sizeof(nm), (const void *)a->label);
		FMT("{label %s flags %#x reserved %#x id %llu}", nm, a->flags,
		    a->reserved, (unsigned long long)a->id);
		break;
	}
	case OP_SNAP_LIST: {
		const struct cowsnap_snap_list *a = (const void *)p;

		FMT("{start_id %llu entries %#llx count %u flags %#x}",
		    (unsigned long long)a->start_id,
		    (unsigned long long)a->entries, a->count, a->flags);
		break;
	}
	case OP_SNAP_DELETE:
	case OP_SNAP_OPEN: {
		const struct cowsnap_snap_id *a = (const void *)p;

		FMT("{id %llu flags %#x reserved %#x}",
		    (unsigned long long)a->id, a->flags, a->reserved);
		break;
	}
	case OP_RESTORE: {
		const struct cowsnap_restore *a = (const void *)p;

		FMT("{id %llu expect_newest %llu flags %#x reserved %#x}",
		    (unsigned long long)a->id,
		    (unsigned long long)a->expect_newest, a->flags,
		    a->reserved);
		break;
	}
	case OP_DIFF: {
		const struct cowsnap_diff *a = (const void *)p;

		FMT("{from %llu to %llu start %llu extents %#llx count %u flags %#x}",
		    (unsigned long long)a->from, (unsigned long long)a->to,
		    (unsigned long long)a->start,
		    (unsigned long long)a->extents, a->count, a->flags);
		break;
	}
	case OP_CLONE: {
		const struct cowsnap_clone *a = (const void *)p;

		fmt_name(nm, sizeof(nm), (const void *)a->name);
		FMT("{id %llu name %s mode %#o flags %#x reserved %#llx}",
		    (unsigned long long)a->id, nm, a->mode, a->flags,
		    (unsigned long long)a->reserved);
		break;
	}
	}
	return k;
}

static int fmt_call(char *b, size_t n, const struct call *c)
{
	int k = 0, i;

	FMT("#%llu %s%s%s ", (unsigned long long)c->seq, op_name[c->op],
	    c->var ? "/" : "", c->var ? c->var : "");
	if (c->op != OP_MUNMAP && c->op != OP_MREMAP && c->op != OP_MADVISE &&
	    c->op != OP_MPROTECT && c->op != OP_TOUCH)
		k += fmt_target(b + k, n > (size_t)k ? n - k : 0, &c->t);
	if (c->cmd)
		FMT(" cmd %#lx", c->cmd);
	if (c->op != OP_CLOSE && c->op != OP_OPEN && c->op != OP_DUP)
		FMT(" ptr %#llx (%s)", (unsigned long long)c->ptr,
		    pc_name[c->pc]);
	if (c->op == OP_SNAP_LIST || c->op == OP_DIFF)
		FMT(" out %#llx (%s)", (unsigned long long)c->ptr2,
		    pc_name[c->pc2]);
	FMT(" args");
	for (i = 0; i < 5; i++)
		FMT(" %#llx", (unsigned long long)c->a[i]);
	FMT(" ");
	k += fmt_img(b + k, n > (size_t)k ? n - k : 0, c);
	if (c->op == OP_TOUCH)
		FMT(" -> signal %d", c->ret < 0 ? c->err : 0);
	else if (c->ret < 0)
		FMT(" -> -1 %s (%d)", errname(c->err), c->err);
	else
		FMT(" -> %#lx", c->ret);
	return k;
}

/* A failure: print it with its context, keep going. */
/* Count a failure by kind; true if it should be printed in full. */
static bool kind_count(const char *fmt, const struct call *c, const char *msg)
{
	int op = c ? c->op : -1, err = c && c->ret < 0 ? c->err : 0, i;
	uint64_t n;

	for (i = 0; i < NKINDS; i++) {
		const char *f = __atomic_load_n(&st->kinds[i].fmt,
						__ATOMIC_ACQUIRE);

		if (!f) {
			/* Claim a free slot (workers race for it). */
			if (!__atomic_compare_exchange_n(&st->kinds[i].fmt, &f,
							 fmt, false,
							 __ATOMIC_ACQ_REL,
							 __ATOMIC_ACQUIRE) &&
			    f != fmt)
				continue;
			st->kinds[i].op = op;
			st->kinds[i].err = err;
			snprintf(st->kinds[i].text, sizeof(st->kinds[i].text),
				 "%s", msg);
		} else if (f != fmt || st->kinds[i].op != op ||
			   st->kinds[i].err != err) {
			continue;
		}
		n = __atomic_fetch_add(&st->kinds[i].n, 1, __ATOMIC_RELAXED);
		return n < 2;
	}
	return true;
}

static void __attribute__((format(printf, 3, 4)))
report(const struct call *c, const struct expect *e, const char *fmt, ...)
{
	static char b[8192], msg[160];
	size_t n = sizeof(b);
	uint64_t nr;
	va_list ap;
	int k = 0, i;

	__atomic_fetch_add(&st->failures, 1, __ATOMIC_RELAXED);
	/* The model may be wrong about this region from here on. */
	if (c && c->t.ri >= 0)
		R[c->t.ri].exact = false;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!kind_count(fmt, c, msg))
		return;
	nr = __atomic_fetch_add(&st->printed, 1, __ATOMIC_RELAXED);
	if (nr >= MAXPRINT)
		return;
	FMT("# FAIL %s seed %#llx epoch %u worker %u%s: ", S.test,
	    (unsigned long long)S.seed, S.epoch, S.worker,
	    S.nobody ? " (uid 65534)" : "");
	va_start(ap, fmt);
	k += vsnprintf(b + k, n - k, fmt, ap);
	va_end(ap);
	if (!nr)
		snprintf(st->first, sizeof(st->first), "%.500s", b + 2);
	FMT("\n");
	if (c) {
		FMT("#   call ");
		k += fmt_call(b + k, n - k, c);
		FMT("\n");
	}
	if (e) {
		FMT("#   expected: %s", e->any ? "anything documented, " : "");
		if (e->only) {
			FMT("only ");
			k += errset(b + k, n - k, e->only);
		} else {
			FMT("%s; must ", e->must ? "failure" : "success");
			k += errset(b + k, n - k, e->must);
			FMT(", maybe ");
			k += errset(b + k, n - k, e->maybe);
		}
		FMT("; documented ");
		k += errset(b + k, n - k, op_table[c ? c->op : 0]);
		FMT("\n");
	}
	FMT("#   recent calls of this worker:\n");
	for (i = NRING - 1; i >= 0; i--) {
		const struct call *r = &ring[(S.seq + NRING - 1 - i) % NRING];

		if (!r->seq || (c && r->seq >= c->seq))
			continue;
		FMT("#     ");
		k += fmt_call(b + k, n > (size_t)k ? n - k : 0, r);
		FMT("\n");
	}
	if ((size_t)k >= n)
		k = n - 1;
	fflush(stdout);
	if (write(1, b, k) < 0)
		perror("write");
}

static void call_init(struct call *c, int op)
{
	memset(c, 0, sizeof(*c));
	c->op = op;
	c->seq = ++S.seq;
	c->t.ri = -1;
	c->t.oi = -1;
	c->t.fi = -1;
}

/* Book-keeping after the syscall: statistics and the ring. */
static void call_done(struct call *c, long ret)
{
	c->ret = ret < 0 ? -1 : ret;
	c->err = ret < 0 ? errno : 0;
	S.calls++;
	S.op_calls[c->op]++;
	if (ret >= 0)
		S.op_ok[c->op]++;
	else if (c->op != OP_TOUCH)
		S.errs[c->err < 64 ? c->err : 0]++;
	ring[c->seq % NRING] = *c;
	if (S.trace) {
		char b[1024];

		fmt_call(b, sizeof(b), c);
		printf("# trace w%u %s\n", S.worker, b);
	}
}

/* Check a result against the errno table and the model's prediction. */
static void verdict(const struct call *c, const struct expect *e)
{
	uint64_t b;

	if (c->ret < 0) {
		b = EB(c->err);
		if (!(op_table[c->op] & b))
			report(c, e, "%s: errno %s is not documented for it",
			       op_name[c->op], errname(c->err));
		else if (e->any)
			return;
		else if (e->only && !(e->only & b))
			report(c, e, "%s: wrong errno %s", op_name[c->op],
			       errname(c->err));
		else if (!e->only && !((e->must | e->maybe) & b))
			report(c, e, "%s: unexpected errno %s",
			       op_name[c->op], errname(c->err));
		return;
	}
	if (!e->any && (e->only || e->must))
		report(c, e, "%s: succeeded but must fail", op_name[c->op]);
}

/* ---------------------------------------------------------------- */
/* Model helpers.                                                    */

static bool reg_in_use(int r)
{
	int i;

	for (i = 0; i < NOFD; i++)
		if (O[i].used && O[i].state == OS_ATT && O[i].reg == r)
			return true;
	for (i = 0; i < NFD; i++)
		if (F[i].fd >= 0 && F[i].kind == FD_SNAP && F[i].reg == r)
			return true;
	for (i = 0; i < NMAP; i++)
		if (M[i].used && M[i].reg == r)
			return true;
	for (i = 0; i < NSLOT; i++)
		if (slot_reg[i] == r)
			return true;
	return false;
}

/* A fresh region record, or -1 when every one is referenced. */
static int reg_new(void)
{
	int i;

	for (i = 0; i < NREG; i++)
		if (!R[i].used)
			goto found;
	for (i = 0; i < NREG; i++)
		if (!reg_in_use(i))
			goto found;
	return -1;
found:
	memset(&R[i], 0, sizeof(R[i]));
	R[i].used = true;
	R[i].next_id = 1;
	return i;
}

static int ids_find(const struct region *r, uint64_t id)
{
	int i;

	for (i = 0; i < r->nids; i++)
		if (r->ids[i] == id)
			return i;
	return -1;
}

static uint64_t ids_newest(const struct region *r)
{
	return r->nids ? r->ids[r->nids - 1] : 0;
}

static void ids_del(struct region *r, int i)
{
	size_t n = r->nids - i - 1;

	memmove(&r->ids[i], &r->ids[i + 1], n * sizeof(r->ids[0]));
	memmove(&r->hash[i], &r->hash[i + 1], n * sizeof(r->hash[0]));
	memmove(&r->labels[i], &r->labels[i + 1], n * 64);
	r->nids--;
}

/* Record snapshot @id; an exact region that overflows stops being exact. */
static void ids_add(struct region *r, uint64_t id, const char *label)
{
	int i;

	if (r->nids == NIDS) {
		if (r->exact) {
			r->exact = false;
			return;
		}
		ids_del(r, 0);
	}
	for (i = r->nids; i > 0 && r->ids[i - 1] > id; i--) {
		r->ids[i] = r->ids[i - 1];
		r->hash[i] = r->hash[i - 1];
		memcpy(r->labels[i], r->labels[i - 1], 64);
	}
	r->ids[i] = id;
	r->hash[i] = 0;
	memcpy(r->labels[i], label, 64);
	r->nids++;
}

static int fd_free_slot(void)
{
	int i;

	for (i = 0; i < NFD; i++)
		if (F[i].fd < 0)
			return i;
	return -1;
}

static int nfds(void)
{
	int i, n = 0;

	for (i = 0; i < NFD; i++)
		n += F[i].fd >= 0;
	return n;
}

/* A random tracked fd of @kind (0: any), or -1. */
static int pick_fd(int kind)
{
	int i, start = rn(NFD);

	for (i = 0; i < NFD; i++) {
		int j = (start + i) % NFD;

		if (F[j].fd >= 0 && (!kind || F[j].kind == kind))
			return j;
	}
	return -1;
}

static void target_of(struct target *t, int fi)
{
	struct ofd *o;

	memset(t, 0, sizeof(*t));
	t->fi = fi;
	t->ri = -1;
	t->oi = -1;
	t->att = -1;
	if (fi < 0) {
		t->fd = chance(50) ? -1 : 1000 + (int)rn(20);
		t->kind = FD_NONE;
		return;
	}
	t->fd = F[fi].fd;
	t->kind = F[fi].kind;
	if (t->kind == FD_SNAP) {
		t->ri = F[fi].reg;
		t->rd = true;
		return;
	}
	t->oi = F[fi].ofd;
	o = &O[t->oi];
	t->rd = o->acc != O_WRONLY;
	t->wr = o->acc != O_RDONLY;
	t->att = o->state == OS_ATT ? 1 : o->state == OS_UNATT ? 0 : -1;
	if (o->state == OS_ATT)
		t->ri = o->reg;
}

/* Mostly a handle; @snap_pct percent a snapshot fd; 3% a bad fd. */
static void pick_target(struct target *t, unsigned int snap_pct)
{
	unsigned int r = rn(100);
	int fi = -1, i, j;

	if (clean) {		/* an attached handle, if there is one */
		for (i = 0, j = rn(NFD); i < NFD; i++, j = (j + 1) % NFD)
			if (F[j].fd >= 0 && F[j].kind == FD_HANDLE &&
			    O[F[j].ofd].state == OS_ATT)
				return target_of(t, j);
		r = 99;
	}
	if (r >= 3) {
		if (r < 3 + snap_pct)
			fi = pick_fd(FD_SNAP);
		if (fi < 0)
			fi = pick_fd(FD_HANDLE);
		if (fi < 0)
			fi = pick_fd(0);
	}
	target_of(t, fi);
}

/* Bytes of the file behind @t, if the model knows. */
static bool size_of(const struct target *t, uint64_t *size)
{
	*size = 0;
	if (t->kind == FD_SNAP) {
		*size = F[t->fi].size;
		return *size != 0;
	}
	if (t->kind != FD_HANDLE)
		return false;
	if (t->att == 0)
		return true;
	if (t->att == 1 && t->ri >= 0 && R[t->ri].size) {
		*size = R[t->ri].size;
		return true;
	}
	return false;
}

static bool pos_of(const struct target *t, int64_t *pos)
{
	if (t->kind == FD_SNAP && !F[t->fi].shared) {
		*pos = F[t->fi].pos;
		return true;
	}
	if (t->kind == FD_HANDLE && !O[t->oi].shared) {
		*pos = O[t->oi].pos;
		return true;
	}
	return false;
}

static void pos_set(const struct target *t, int64_t pos)
{
	if (t->kind == FD_SNAP)
		F[t->fi].pos = pos;
	else if (t->kind == FD_HANDLE)
		O[t->oi].pos = pos;
}

/* Region record @t's handle is attached to, learning an unknown one. */
static struct region *target_region(const struct target *t)
{
	return t->ri >= 0 ? &R[t->ri] : NULL;
}

/* ---------------------------------------------------------------- */
/* Names.                                                             */

enum { NM_BAD, NM_SLOT, NM_FOREIGN, NM_NONE, NM_OTHER };

/* README: 1-63 bytes of [A-Za-z0-9._-], not starting with '.'. */
static bool name_ok(const char *b, bool empty_ok)
{
	size_t i, n = strnlen(b, 64);

	if (n == 64)
		return false;
	if (!n)
		return empty_ok;
	if (b[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = b[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return false;
	}
	return true;
}

/* The kernel's errno for a name or label with no NUL in its 64 bytes. */
static uint64_t name_nonul(const char *b)
{
	return strnlen(b, 64) == 64 ? EB(ENAMETOOLONG) : 0;
}

static int name_class(const char *b, int *idx)
{
	int i;

	*idx = -1;
	if (!name_ok(b, false))
		return NM_BAD;
	for (i = 0; i < NSLOT; i++)
		if (!strcmp(b, slot_name[i])) {
			*idx = i;
			return NM_SLOT;
		}
	for (i = 0; i < nforeign; i++)
		if (!strcmp(b, foreign[i])) {
			*idx = i;
			return NM_FOREIGN;
		}
	if (!strncmp(b, "fz-none-", 8))
		return NM_NONE;
	return NM_OTHER;
}

static void set_slot_names(unsigned int w)
{
	int i;

	memset(slot_name, 0, sizeof(slot_name));
	for (i = 0; i < NSLOT; i++) {
		snprintf(slot_name[i], 64, "fz-w%u-%d", w, i);
		slot_reg[i] = -1;
	}
	/* The last one is 63 bytes long: the longest valid name. */
	memset(slot_name[NSLOT - 1] + strlen(slot_name[NSLOT - 1]), 'x',
	       63 - strlen(slot_name[NSLOT - 1]));
	slot_name[NSLOT - 1][63] = 0;
}

/* An invalid name or label in the 64 bytes at @b. */
static void bad_name(char *b)
{
	static const char bad_chars[] = " /*\n:\\@~\t,";
	const char *base = slot_name[rn(NSLOT)];
	size_t len;

	memset(b, 0, 64);
	switch (rn(11)) {
	case 0:			/* empty */
		break;
	case 1:			/* 64 bytes, no NUL */
		memcpy(b, base, strlen(base));
		memset(b + strlen(base), 'n', 64 - strlen(base));
		break;
	case 2:
		snprintf(b, 64, ".%s", base);
		break;
	case 3:
		strcpy(b, base);
		b[rn(strlen(base))] = bad_chars[rn(sizeof(bad_chars) - 1)];
		break;
	case 4:			/* Latin-1 letters, bytes >= 0x80 */
		strcpy(b, base);
		len = strlen(base);
		b[rn(len)] = (char)(chance(50) ? 0xe9 : 0x80 | rn(128));
		break;
	case 5:
		strcpy(b, "fz-caf\xc3\xa9");	/* UTF-8 */
		break;
	case 6:
		strcpy(b, chance(50) ? "." : "..");
		break;
	case 7:
		strcpy(b, "fz-\x7f");
		break;
	case 8:			/* 64 valid characters */
		memset(b, 'v', 64);
		break;
	case 9:			/* a control character */
		b[0] = '\x01';
		break;
	default:
		strcpy(b, "fz-w0-0 ");
		break;
	}
}

/*
 * A region name in the 64 bytes at @b: mostly one of our slots (whose
 * existence the model knows), else another worker's name, one nobody
 * creates ("fz-none-N"), a valid name followed by garbage after its NUL,
 * or an invalid one.
 */
static void gen_name(char *b, bool foreign_ok, bool none_ok)
{
	unsigned int r = clean ? 0 : rn(100);
	const char *s;

	memset(b, 0, 64);
	if (r < 70 || (r < 76 && !(foreign_ok && nforeign)) ||
	    (r >= 76 && r < 80 && !none_ok)) {
		strcpy(b, slot_name[rn(NSLOT)]);
	} else if (r < 76) {
		strcpy(b, foreign[rn(nforeign)]);
	} else if (r < 80) {
		snprintf(b, 64, "fz-none-%u", (unsigned int)rn(1000));
	} else if (r < 84) {
		s = slot_name[rn(NSLOT - 1)];
		strcpy(b, s);
		memset(b + strlen(s) + 1, chance(50) ? 'Z' : 0xff,
		       63 - strlen(s) - 1);
	} else {
		bad_name(b);
	}
}

static void gen_label(char *b)
{
	unsigned int r = clean ? rn(80) : rn(100);

	memset(b, 0, 64);
	if (r < 40)
		return;
	if (r < 75)
		snprintf(b, 64, "l%llu", (unsigned long long)rn(1000));
	else if (r < 80)
		memset(b, 'L', 63);
	else
		bad_name(b);
}

/* ---------------------------------------------------------------- */
/* Argument values.                                                  */

static uint32_t gen_flags32(void)
{
	static const uint32_t v[] = { 1, 2, 0x80, 0x80000000, 0xffffffff };

	if (clean || chance(90))
		return 0;
	return chance(70) ? v[rn(5)] : (uint32_t)rnd();
}

static uint64_t gen_rsv64(void)
{
	if (clean || chance(92))
		return 0;
	return chance(50) ? 1ULL << rn(64) : rnd();
}

static unsigned int gen_mode(void)
{
	static const unsigned int v[] = { 0600, 0600, 0600, 0644, 0604, 0666,
					  0, 0400, 0200, 0777, 0060, 0006 };
	static const unsigned int bad[] = { 01000, 04755, 0x80000000, 01777,
					    0xffffffff };

	return clean || chance(95) ? v[rn(12)] : bad[rn(5)];
}

static uint64_t gen_size(void)
{
	unsigned int r = clean ? rn(60) : rn(100);

	if (r < 45)
		return PG * (1 + rn(16));
	if (r < 60)
		return PG * (17 + rn(48));
	if (r < 65)
		return TB16;
	if (r < 70)
		return PG;
	switch (r % 8) {
	case 0:
		return 0;
	case 1:
		return 1 + rn(PG - 1);
	case 2:
		return PG * (1 + rn(8)) + 1 + rn(PG - 1);
	case 3:
		return TB16 + PG;
	case 4:
		return UINT64_MAX & ~(PG - 1);
	case 5:
		return 1ULL << 62;
	case 6:
		return 0x8000000000000000ULL;
	default:
		return UINT64_MAX;
	}
}

/* A snapshot id: live, deleted, never taken, 0 or huge. */
static uint64_t gen_id(const struct region *r)
{
	static const uint64_t huge[] = { UINT64_MAX, 1ULL << 63,
					 0x100000000ULL, UINT32_MAX };
	unsigned int k = clean ? rn(60) : rn(100);

	if (r && r->nids && (k < 50 || clean))
		return r->ids[rn(r->nids)];
	if (r && k < 65)
		return 1 + rn(r->next_id > r->last_id ? r->next_id :
			      r->last_id + 1);
	if (r && k < 75)
		return r->exact ? r->next_id : r->last_id + 1 + rn(3);
	if (k < 82)
		return 0;
	if (k < 90)
		return huge[rn(4)];
	return 1 + rn(8);
}

static uint64_t gen_len(uint64_t size)
{
	switch (rn(17)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return 8;
	case 3:
		return PG - 1;
	case 4:
		return PG;
	case 5:
		return PG + 1;
	case 6:
		return 2 * PG + rn(PG);
	case 7:
		return rn(ARENA_SIZE);
	case 8:
		return size && size < (1 << 24) ? size : 3 * PG;
	case 9:
		return ARENA_SIZE + PG;
	case 10:
		return 1 << 20;
	case 11:
		return 1ULL << 40;
	case 12:
		return UINT64_MAX;
	case 13:
		return 1ULL << 63;
	case 14:
		return MAX_RW + PG;
	default:
		return 1 + rn(3 * PG);
	}
}

static int64_t gen_off(uint64_t size)
{
	switch (rn(14)) {
	case 0:
	case 1:
		return 0;
	case 2:
		return rn(size ? size : PG);
	case 3:
		return size ? size - 1 : 0;
	case 4:
		return size;
	case 5:
		return size + 1;
	case 6:
		return -1;
	case 7:
		return INT64_MAX;
	case 8:
		return INT64_MAX - 10;
	case 9:
		return PG - 1;
	case 10:
		return size > PG ? size - PG + rn(PG) : 0;
	case 11:
		return 1LL << 62;
	case 12:
		return -(int64_t)PG;
	default:
		return rn(size ? size : 4 * PG) & ~7ULL;
	}
}

/* ---------------------------------------------------------------- */
/* Where arguments go.                                                */

struct place {
	int cls;
	char *p;
	bool rd, wr;	/* the kernel can read, write every byte */
	int mi;
};

static const uint64_t kaddr[] = {
	0xffffffff81000000ULL, 0xffff888000000000ULL, 0xffffffffff600000ULL,
	0xfffffffffffff000ULL, 0xffffc90000000000ULL,
};

static const uint64_t noncanon[] = {
	0x8000000000000000ULL, 0xdead000000000000ULL, 0x0100000000000000ULL,
};

/* A pristine map of @kind able to hold @len bytes, or -1. */
static int pick_map(int kind, int prot, size_t len, bool exact)
{
	int i, start = rn(NMAP);

	for (i = 0; i < NMAP; i++) {
		struct map *m = &M[(start + i) % NMAP];

		if (!m->used || !m->pristine || m->kind != kind ||
		    m->prot != prot || m->len < len)
			continue;
		if (exact && (m->reg < 0 || !R[m->reg].exact))
			continue;
		return (start + i) % NMAP;
	}
	return -1;
}

static char *map_spot(int mi, size_t len)
{
	size_t off = rn(M[mi].len - len + 1);

	if (chance(50))
		off &= ~63UL;
	return M[mi].addr + off;
}

/*
 * Put the @len byte struct @img where the kernel will find it.  Classes
 * that take their bytes from memory (read-only live and snapshot maps)
 * load them into @img.  @name_at: offset of a region name that must stay
 * ours (content from memory is refused otherwise), or -1.
 */
static void place_arg(struct place *pl, void *img, size_t len, int name_at)
{
	static const unsigned short w[NPC] = {
		[PC_GOOD] = 720, [PC_RO] = 50, [PC_LIVE] = 50,
		[PC_LIVE_RO] = 20, [PC_SNAPMAP] = 30, [PC_PROTNONE] = 10,
		[PC_NULL] = 30, [PC_LOW] = 10, [PC_KERNEL] = 30,
		[PC_NONCANON] = 10, [PC_STRADDLE] = 25, [PC_HOLE] = 10,
		[PC_TOP] = 5,
	};
	unsigned int r = clean ? (chance(85) ? 0 : 800) : rn(1000), cls;
	unsigned char tmp[160];
	size_t off;
	int mi = -1, idx;

	for (cls = 0; cls < NPC - 1 && r >= w[cls]; cls++)
		r -= w[cls];
	memset(pl, 0, sizeof(*pl));
	pl->mi = -1;
	switch (cls) {
	case PC_RO:
		off = rn(RO_SIZE - len + 1);
		if (chance(50))
			off &= ~63UL;
		memcpy(ro_rw + off, img, len);
		pl->p = ro + off;
		pl->rd = true;
		break;
	case PC_LIVE:
		mi = pick_map(MK_LIVE, PROT_READ | PROT_WRITE, len, true);
		if (mi < 0)
			goto good;
		pl->p = map_spot(mi, len);
		if (guarded_copy(pl->p, img, len)) {
			report(NULL, NULL, "store into live map %p faulted",
			       pl->p);
			goto good;
		}
		pl->rd = pl->wr = true;
		break;
	case PC_LIVE_RO:
	case PC_SNAPMAP:
		mi = pick_map(cls == PC_SNAPMAP ? MK_SNAP : MK_LIVE, PROT_READ,
			      len, cls == PC_LIVE_RO);
		if (mi < 0)
			goto good;
		pl->p = map_spot(mi, len);
		if (guarded_copy(tmp, pl->p, len)) {
			report(NULL, NULL, "load from map %p faulted", pl->p);
			goto good;
		}
		/* Its bytes are the struct now, if the name stays ours. */
		if (name_at >= 0) {
			int nc = name_class((char *)tmp + name_at, &idx);

			if (nc == NM_OTHER || nc == NM_FOREIGN ||
			    nc == NM_NONE)
				goto good;
		}
		memcpy(img, tmp, len);
		pl->rd = true;
		break;
	case PC_PROTNONE:
		mi = pick_map(MK_LIVE, PROT_NONE, len, false);
		if (mi < 0)
			mi = pick_map(MK_SNAP, PROT_NONE, len, false);
		if (mi < 0)
			goto straddle;
		pl->p = map_spot(mi, len);
		break;
	case PC_NULL:
		pl->p = NULL;
		break;
	case PC_LOW:		/* below mmap_min_addr: never mapped */
		pl->p = (char *)(uintptr_t)(0x1000 + rn(0xe000 - len));
		break;
	case PC_KERNEL:
		pl->p = (char *)(uintptr_t)(kaddr[rn(5)] + rn(64));
		if ((uintptr_t)pl->p + len < (uintptr_t)pl->p)
			pl->p -= len;
		break;
	case PC_NONCANON:
		pl->p = (char *)(uintptr_t)(noncanon[rn(3)] + rn(64));
		break;
	case PC_STRADDLE:
straddle:
		cls = PC_STRADDLE;
		pl->p = hole - 1 - rn(len - 1);
		memcpy(pl->p, img, hole - pl->p);
		break;
	case PC_HOLE:
		pl->p = hole + rn(PG - len);
		break;
	case PC_TOP:		/* reaches past the top of user space */
		pl->p = (char *)(uintptr_t)(0x7ffffffff000ULL - 1 -
					    rn(len - 1));
		break;
	default:
good:
		cls = PC_GOOD;
		mi = -1;
		off = rn(ARENA_HALF - len);
		if (chance(50))
			off &= ~63UL;
		pl->p = arena + off;
		memcpy(pl->p, img, len);
		pl->rd = pl->wr = true;
		break;
	}
	pl->cls = cls;
	pl->mi = mi;
}

/* Read back what the kernel wrote into the struct. */
static bool place_get(const struct place *pl, void *img, size_t len)
{
	if (!pl->wr)
		return false;
	if (guarded_copy(img, pl->p, len)) {
		report(NULL, NULL, "load back from %p (%s) faulted", pl->p,
		       pc_name[pl->cls]);
		return false;
	}
	return true;
}

/* An output array (SNAP_LIST entries, DIFF extents) of @cap elements. */
struct outbuf {
	int cls;
	uint64_t p;
	int64_t room;	/* bytes the kernel can write there, -1: unknown */
};

static void place_out(struct outbuf *q, size_t elem, size_t cap)
{
	unsigned int r = clean ? 0 : rn(100);
	size_t need = elem * cap;
	int mi;

	memset(q, 0, sizeof(*q));
	if (r < 60 || (r < 65 && cap < 2)) {
		q->cls = PC_GOOD;
		q->p = (uintptr_t)(arena + ARENA_SIZE - need -
				   (chance(50) ? 0 : rn(ARENA_HALF - need)));
		q->room = (uintptr_t)arena + ARENA_SIZE - q->p;
	} else if (r < 70) {
		/* Room for fewer than @cap: the rest straddles the hole. */
		q->cls = PC_STRADDLE;
		q->p = (uintptr_t)(arena + ARENA_SIZE - elem * rn(cap) -
				   rn(elem));
		q->room = (uintptr_t)arena + ARENA_SIZE - q->p;
	} else if (r < 76 &&
		   (mi = pick_map(MK_LIVE, PROT_READ | PROT_WRITE, need,
				  true)) >= 0) {
		q->cls = PC_LIVE;
		q->p = (uintptr_t)map_spot(mi, need);
		q->room = need;
	} else if (r < 80) {
		q->cls = PC_RO;
		q->p = (uintptr_t)ro + rn(RO_SIZE);
	} else if (r < 83 &&
		   (mi = pick_map(MK_SNAP, PROT_READ, 1, false)) >= 0) {
		q->cls = PC_SNAPMAP;
		q->p = (uintptr_t)map_spot(mi, 1);
	} else if (r < 90) {
		q->cls = PC_NULL;
	} else if (r < 95) {
		q->cls = PC_KERNEL;
		q->p = kaddr[rn(5)];
	} else if (r < 97) {
		q->cls = PC_HOLE;
		q->p = (uintptr_t)hole;
	} else {
		/* Junk, but never a user address: it would be written. */
		q->cls = PC_JUNK;
		q->p = rnd() | (1ULL << 63);
	}
}

/* Buffers of read() and write(). */
struct buf {
	int cls;
	char *p;
	int64_t rdok, wrok;	/* accessible bytes from p */
};

/* Place @*len bytes; map classes clamp @*len to stay inside the map. */
static void place_buf(struct buf *b, uint64_t *len, bool kernel_writes)
{
	unsigned int r = !clean ? rn(100) : chance(80) ? rn(60) : 66 + rn(10);
	int mi = -1;
	size_t off;

	memset(b, 0, sizeof(*b));
	if (r < 60) {
		b->cls = PC_GOOD;
		off = rn(ARENA_SIZE);
		if (chance(50))
			off &= ~63UL;
		b->p = arena + off;
		b->rdok = b->wrok = ARENA_SIZE - off;
		return;
	}
	if (r < 66) {
		b->cls = PC_RO;
		off = rn(RO_SIZE);
		b->p = ro + off;
		b->rdok = RO_SIZE - off;
		return;
	}
	if (r < 76)
		mi = pick_map(MK_LIVE, PROT_READ | PROT_WRITE, 1, false);
	else if (r < 80)
		mi = pick_map(MK_LIVE, PROT_READ, 1, false);
	else if (r < 85)
		mi = pick_map(MK_SNAP, PROT_READ, 1, false);
	else if (r < 86)
		mi = pick_map(MK_LIVE, PROT_NONE, 1, false);
	if (mi >= 0) {
		struct map *m = &M[mi];

		b->cls = m->kind == MK_SNAP ? PC_SNAPMAP :
			 m->prot == PROT_NONE ? PC_PROTNONE :
			 m->prot & PROT_WRITE ? PC_LIVE : PC_LIVE_RO;
		off = rn(m->len);
		b->p = m->addr + off;
		if (*len > m->len - off)
			*len = m->len - off;
		b->rdok = m->prot == PROT_NONE ? 0 : m->len - off;
		b->wrok = m->prot & PROT_WRITE ? m->len - off : 0;
		return;
	}
	switch (r % 5) {
	case 0:
		b->cls = PC_NULL;
		break;
	case 1:
		b->cls = PC_KERNEL;
		b->p = (char *)(uintptr_t)kaddr[rn(5)];
		break;
	case 2:
		b->cls = PC_HOLE;
		b->p = hole + rn(PG);
		break;
	case 3:
		b->cls = PC_LOW;
		b->p = (char *)(uintptr_t)(0x1000 + rn(0xe000));
		if (*len > 0x10000)
			*len = 0x10000 - ((uintptr_t)b->p);
		break;
	default:
		/* The top of user space: only ever read by the kernel. */
		b->cls = kernel_writes ? PC_NONCANON : PC_TOP;
		b->p = (char *)(uintptr_t)(kernel_writes ? noncanon[rn(3)] :
					   0x7ffffffff000ULL - 1 - rn(64));
		break;
	}
}

/* 1: access_ok() passes, 0: fails, -1: depends on the paging mode. */
static int uaccess_ok(uint64_t p, uint64_t len)
{
	uint64_t end = p + len;

	if (end < p)
		return 0;
	if (end <= USER_SURE)
		return 1;
	if (end > USER_MAX56)
		return 0;
	return -1;
}

/* ---------------------------------------------------------------- */
/* Mappings in the model.                                             */

static int map_free_slot(void)
{
	int i;

	for (i = 0; i < NMAP; i++)
		if (!M[i].used)
			return i;
	return -1;
}

static int nmaps(void)
{
	int i, n = 0;

	for (i = 0; i < NMAP; i++)
		n += M[i].used;
	return n;
}

/*
 * Split map @i so that [@s, @e) is a map of its own; returns its index,
 * -1 if they do not overlap, -2 if the model ran out of slots (then the
 * whole map is no longer pristine).
 */
static int map_carve(int i, char *s, char *e)
{
	struct map *m = &M[i];
	char *ms = m->addr, *me = m->addr + m->len;
	int need, j;

	if (s < ms)
		s = ms;
	if (e > me)
		e = me;
	if (s >= e)
		return -1;
	need = (s > ms) + (e < me);
	for (j = 0; j < NMAP && need; j++)
		need -= !M[j].used;
	if (need > 0) {
		m->pristine = false;
		return -2;
	}
	if (s > ms) {
		j = map_free_slot();
		M[j] = *m;
		M[j].len = s - ms;
	}
	if (e < me) {
		j = map_free_slot();
		M[j] = *m;
		M[j].addr = e;
		M[j].len = me - e;
		M[j].off += e - ms;
	}
	m->off += s - ms;
	m->addr = s;
	m->len = e - s;
	return i;
}

/* Forget every mapping in [@s, @e) (it was unmapped). */
static void map_unmapped(char *s, char *e)
{
	int i, k;

	for (i = 0; i < NMAP; i++) {
		if (!M[i].used)
			continue;
		k = map_carve(i, s, e);
		if (k >= 0)
			M[k].used = false;
	}
}

/* Mark [@s, @e) unknown (e.g. a failed MAP_FIXED may have unmapped it). */
static void map_unknown(char *s, char *e)
{
	int i, k;

	for (i = 0; i < NMAP; i++) {
		if (!M[i].used)
			continue;
		k = map_carve(i, s, e);
		if (k >= 0)
			M[k].pristine = false;
	}
}

static bool overlaps_map(char *s, size_t len)
{
	int i;

	for (i = 0; i < NMAP; i++)
		if (M[i].used && s < M[i].addr + M[i].len &&
		    M[i].addr < s + len)
			return true;
	return false;
}

/* A landing slot for MAP_FIXED/MREMAP_FIXED with no tracked mapping. */
static char *free_landing(void)
{
	int i, start = rn(LAND_SLOTS);

	for (i = 0; i < LAND_SLOTS; i++) {
		char *s = (char *)(LAND_ADDR +
				   ((start + i) % LAND_SLOTS) * LAND_STRIDE);

		if (!overlaps_map(s, MAP_CAP))
			return s;
	}
	return NULL;
}

/*
 * A tracked map, pristine if @pristine.  Range operations (mprotect,
 * madvise, mremap, MAP_FIXED) only go to pristine ones: a map with holes
 * may overlap a newer mapping the kernel put into a hole.
 */
static int pick_any_map(bool pristine)
{
	int i, start = rn(NMAP);

	for (i = 0; i < NMAP; i++) {
		struct map *m = &M[(start + i) % NMAP];

		if (m->used && (m->pristine || !pristine))
			return (start + i) % NMAP;
	}
	return -1;
}

/* ---------------------------------------------------------------- */
/* File descriptors.                                                   */

static void fd_forget(int fi)
{
	int oi = F[fi].ofd, i;

	if (F[fi].kind == FD_HANDLE) {
		for (i = 0; i < NFD; i++)
			if (i != fi && F[i].fd >= 0 &&
			    F[i].kind == FD_HANDLE && F[i].ofd == oi)
				break;
		if (i == NFD)
			O[oi].used = false;
	}
	F[fi].fd = -1;
}

static int ofd_new(int acc)
{
	int i;

	for (i = 0; i < NOFD; i++)
		if (!O[i].used) {
			memset(&O[i], 0, sizeof(O[i]));
			O[i].used = true;
			O[i].acc = acc;
			O[i].state = OS_UNATT;
			O[i].reg = -1;
			return i;
		}
	return -1;
}

/* A close the model makes itself: it must work. */
static void close_checked(int fd)
{
	struct call c;
	struct expect e = { 0 };

	call_init(&c, OP_CLOSE);
	c.t.fd = fd;
	c.t.kind = FD_NONE;
	c.var = "cleanup";
	call_done(&c, close(fd));
	verdict(&c, &e);
}

/* ---------------------------------------------------------------- */
/* The operations.                                                   */

static void op_open(void)
{
	static const int accs[] = { O_RDWR, O_RDWR, O_RDWR, O_RDWR, O_RDWR,
				    O_RDWR, O_RDWR, O_RDONLY, O_RDONLY,
				    O_WRONLY };
	int acc = accs[rn(10)], fi, oi, fd;
	int fl = acc | (chance(50) ? O_CLOEXEC : 0) |
		 (chance(10) ? O_NONBLOCK : 0);
	struct expect e = { .maybe = E3(EMFILE, ENFILE, ENOMEM) };
	unsigned int need = acc == O_RDONLY ? 4 : acc == O_WRONLY ? 2 : 6;
	struct call c;

	call_init(&c, OP_OPEN);
	c.a[0] = fl;
	if (S.nobody && (need & ~(dev_mode & 7)))
		e.must |= EB(EACCES);
	fd = open(COWSNAP_DEV, fl);
	call_done(&c, fd);
	c.t.fd = fd;
	verdict(&c, &e);
	if (fd < 0)
		return;
	fi = fd_free_slot();
	oi = fi >= 0 ? ofd_new(acc) : -1;
	if (oi < 0) {
		close_checked(fd);
		return;
	}
	F[fi].fd = fd;
	F[fi].kind = FD_HANDLE;
	F[fi].ofd = oi;
}

static void op_close(void)
{
	struct expect e = { 0 };
	struct call c;
	int fi = pick_fd(0);

	if (fi < 0)
		return op_open();
	call_init(&c, OP_CLOSE);
	target_of(&c.t, fi);
	call_done(&c, close(F[fi].fd));
	verdict(&c, &e);
	fd_forget(fi);
}

static void op_dup(void)
{
	struct expect e = { .maybe = EB(EMFILE) };
	struct call c;
	int fd, fi = chance(95) ? pick_fd(FD_HANDLE) : -1, nfi;

	call_init(&c, OP_DUP);
	target_of(&c.t, fi);
	if (c.t.kind == FD_NONE)
		e.only = EB(EBADF);
	if (chance(50)) {
		c.var = "F_DUPFD_CLOEXEC";
		fd = fcntl(c.t.fd, F_DUPFD_CLOEXEC, 3);
	} else {
		fd = dup(c.t.fd);
	}
	call_done(&c, fd);
	verdict(&c, &e);
	if (fd < 0)
		return;
	nfi = fd_free_slot();
	if (nfi < 0 || fi < 0) {
		close_checked(fd);
		return;
	}
	F[nfi] = F[fi];
	F[nfi].fd = fd;
}

/* Expectations every ioctl shares: the fd, attachment, write access. */
static void ioc_expect(const struct target *t, struct expect *e,
		       bool attach, bool write)
{
	if (t->kind == FD_NONE) {
		e->only = EB(EBADF);
		return;
	}
	if (t->kind == FD_SNAP) {
		e->only = EB(ENOTTY);	/* snapshot fds have no ioctls */
		return;
	}
	if (attach && t->att == 0)
		e->must |= EB(EINVAL);
	else if (attach && t->att < 0)
		e->maybe |= EB(EINVAL);
	if (write && !t->wr)
		e->must |= EB(EACCES);
}

static long do_ioctl(struct call *c, unsigned long cmd, const struct place *pl,
		     const void *img, size_t len)
{
	long ret;

	c->cmd = cmd;
	c->pc = pl->cls;
	c->ptr = (uintptr_t)pl->p;
	memcpy(c->img, img, len);
	c->imglen = len;
	ret = ioctl(c->t.fd, cmd, pl->p);
	call_done(c, ret);
	return ret;
}

/* The handle got attached to something the model does not know. */
static void handle_attached_unknown(const struct target *t)
{
	if (t->kind == FD_HANDLE && O[t->oi].state == OS_UNKNOWN) {
		O[t->oi].state = OS_ATT;
		O[t->oi].reg = -1;
	}
}

/* The ioctls of the UAPI header: bad-ioctl avoids them, API lists them. */
static const unsigned long valid_cmds[] = {
	COWSNAP_IOC_API, COWSNAP_IOC_CREATE, COWSNAP_IOC_ATTACH,
	COWSNAP_IOC_DESTROY, COWSNAP_IOC_INFO, COWSNAP_IOC_SNAP_CREATE,
	COWSNAP_IOC_SNAP_LIST, COWSNAP_IOC_SNAP_DELETE, COWSNAP_IOC_SNAP_OPEN,
	COWSNAP_IOC_RESTORE, COWSNAP_IOC_DIFF, COWSNAP_IOC_CLONE,
};
#define NVALID	(sizeof(valid_cmds) / sizeof(valid_cmds[0]))
#define ALL_FEATURES	(COWSNAP_FEAT_REGIONS | COWSNAP_FEAT_SNAPSHOTS | \
			 COWSNAP_FEAT_RESTORE | COWSNAP_FEAT_DIFF | \
			 COWSNAP_FEAT_CLONE)

static void op_api(void)
{
	struct cowsnap_api a = { .api = COWSNAP_API_VERSION };
	struct expect e = { 0 };
	uint64_t want = 0;
	struct place pl;
	struct call c;
	unsigned int i;

	call_init(&c, OP_API);
	pick_target(&c.t, 5);
	if (!clean && chance(10))
		a.api = chance(50) ? 0 : chance(50) ? 2 : (uint32_t)rnd();
	a.reserved = gen_flags32();
	a.features = rnd();	/* out: ignored */
	place_arg(&pl, &a, sizeof(a), -1);
	ioc_expect(&c.t, &e, false, false);
	if (!pl.rd)
		e.must |= EB(EFAULT);
	else if (a.api != COWSNAP_API_VERSION || a.reserved)
		e.must |= EB(EINVAL);
	if (!pl.wr)
		e.must |= EB(EFAULT);
	do_ioctl(&c, COWSNAP_IOC_API, &pl, &a, sizeof(a));
	verdict(&c, &e);
	for (i = 0; i < NVALID; i++)
		want |= 1ULL << _IOC_NR(valid_cmds[i]);
	if (c.ret == 0 && place_get(&pl, &a, sizeof(a)) &&
	    (a.features != ALL_FEATURES || a.ioctls != want))
		report(&c, NULL, "API: features %#llx ioctls %#llx, want %#llx %#llx",
		       (unsigned long long)a.features,
		       (unsigned long long)a.ioctls,
		       (unsigned long long)ALL_FEATURES,
		       (unsigned long long)want);
}

/*
 * A hash of the @size bytes of @fd (a handle: the live view, or a snapshot
 * fd) read with one pread(), which must return them all; 0 on failure.
 */
static uint64_t content_hash(const struct target *t, int fd, uint64_t size,
			     const char *what)
{
	static uint64_t buf[HASH_CAP / 8];
	struct expect e = { 0 };
	uint64_t h = 0xcbf29ce484222325ULL, i;
	struct call c;

	call_init(&c, OP_READ);
	c.var = what;
	c.t = *t;
	c.t.fd = fd;
	c.ptr = (uintptr_t)buf;
	c.a[0] = size;
	call_done(&c, pread(fd, buf, size, 0));
	verdict(&c, &e);
	if (c.ret != (long)size) {
		if (c.ret >= 0)
			report(&c, NULL, "%s: pread of %llu bytes returned %ld",
			       what, (unsigned long long)size, c.ret);
		return 0;
	}
	for (i = 0; i < size / 8; i++)
		h = (h ^ buf[i]) * 0x100000001b3ULL;
	return h | 1;
}

/* Contents of a region we can hash: known, small, readable handle. */
static bool hashable(const struct region *r, const struct target *t)
{
	return r && r->size && r->size <= HASH_CAP &&
	       (t->kind == FD_SNAP || t->rd);
}

/* After a failed CREATE/CLONE of a free slot: the name must not exist. */
static void probe_not_created(const struct call *fc, const char *name)
{
	struct expect e = { .only = EB(ENOENT) };
	struct cowsnap_name n = { 0 };
	struct place pl = { .cls = PC_GOOD, .rd = true, .wr = true };
	struct call c;

	call_init(&c, OP_DESTROY);
	c.var = "probe";
	target_of(&c.t, fc->t.fi);
	if (c.t.kind != FD_HANDLE)
		return;
	memcpy(n.name, name, 64);
	pl.p = arena;
	memcpy(arena, &n, sizeof(n));
	do_ioctl(&c, COWSNAP_IOC_DESTROY, &pl, &n, sizeof(n));
	if (c.ret == 0)
		report(fc, NULL, "%s failed (%s) but created region %s",
		       op_name[fc->op], errname(fc->err), name);
	else
		verdict(&c, &e);
}

/* A new region named by own slot @k with the given properties. */
static int slot_region(int k, uint64_t size, unsigned int mode, bool exact)
{
	int ri = reg_new();

	slot_reg[k] = ri;
	if (ri < 0)
		return -1;
	strcpy(R[ri].name, slot_name[k]);
	R[ri].size = size;
	R[ri].mode = mode;
	R[ri].uid = getuid();
	R[ri].mine = true;
	R[ri].exact = exact;
	return ri;
}

static void op_create(void)
{
	struct cowsnap_create a = { 0 };
	struct expect e = { .maybe = EB(ENOMEM) };
	struct place pl;
	struct call c;
	int nc, k;

	call_init(&c, OP_CREATE);
	pick_target(&c.t, 3);
	gen_name(a.name, false, false);
	a.size = gen_size();
	a.mode = gen_mode();
	a.flags = gen_flags32();
	a.reserved[0] = gen_rsv64();
	a.reserved[1] = gen_rsv64();
	place_arg(&pl, &a, sizeof(a), 0);
	nc = name_class(a.name, &k);
	ioc_expect(&c.t, &e, false, false);
	if (!pl.rd) {
		e.must |= EB(EFAULT);
	} else {
		if (a.flags || a.reserved[0] || a.reserved[1] ||
		    (a.mode & ~0777) || nc == NM_BAD)
			e.must |= EB(EINVAL) | name_nonul(a.name);
		if (!a.size || a.size % PG)
			e.must |= EB(EINVAL);
		else if (a.size > max_region_size || a.size > INT64_MAX)
			e.must |= EB(E2BIG);
		if (c.t.att == 1)
			e.must |= EB(EBUSY);
		else if (c.t.att < 0)
			e.maybe |= EB(EBUSY);
		if (nc == NM_SLOT && slot_reg[k] >= 0)
			e.must |= EB(EEXIST);
	}
	do_ioctl(&c, COWSNAP_IOC_CREATE, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret < 0) {
		if (c.err == EBUSY)
			handle_attached_unknown(&c.t);
		if (nc == NM_SLOT && slot_reg[k] < 0 && c.err != EEXIST &&
		    c.t.kind == FD_HANDLE)
			probe_not_created(&c, a.name);
		return;
	}
	if (c.t.kind != FD_HANDLE)
		return;		/* reported above */
	O[c.t.oi].state = OS_ATT;
	O[c.t.oi].reg = nc != NM_SLOT ? -1 :
			slot_region(k, a.size, a.mode,
				    S.ns_private && !O[c.t.oi].shared);
}

static void op_attach(void)
{
	struct cowsnap_name a = { 0 };
	struct expect e = { 0 };
	struct place pl;
	struct call c;
	struct region *r = NULL;
	int nc, k, ri = -1;

	call_init(&c, OP_ATTACH);
	pick_target(&c.t, 3);
	gen_name(a.name, true, true);
	a.flags = gen_flags32();
	a.reserved = gen_flags32();
	place_arg(&pl, &a, sizeof(a), 0);
	nc = name_class(a.name, &k);
	if (nc == NM_SLOT && slot_reg[k] >= 0)
		r = &R[slot_reg[k]];
	ioc_expect(&c.t, &e, false, false);
	if (!pl.rd) {
		e.must |= EB(EFAULT);
	} else {
		if (a.flags || a.reserved || nc == NM_BAD)
			e.must |= EB(EINVAL) | name_nonul(a.name);
		if (c.t.att == 1)
			e.must |= EB(EBUSY);
		else if (c.t.att < 0)
			e.maybe |= EB(EBUSY);
		if (nc == NM_NONE || (nc == NM_SLOT && !r))
			e.must |= EB(ENOENT);
		if (nc == NM_FOREIGN)
			e.maybe |= EB(ENOENT) | (S.nobody ? EB(EACCES) : 0);
		if (r && S.nobody) {
			unsigned int need = 4 | (c.t.wr ? 2 : 0);
			unsigned int bits = (r->mode >> 6) & 7;

			if (r->uid != getuid())
				bits = r->mode & 7;
			if (need & ~bits)
				e.must |= EB(EACCES);
		}
	}
	do_ioctl(&c, COWSNAP_IOC_ATTACH, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret < 0) {
		if (c.err == EBUSY)
			handle_attached_unknown(&c.t);
		return;
	}
	if (c.t.kind != FD_HANDLE)
		return;
	if (r) {
		ri = slot_reg[k];
		if (O[c.t.oi].shared)
			r->exact = false;
	} else if ((ri = reg_new()) >= 0) {
		strcpy(R[ri].name, a.name);
	}
	O[c.t.oi].state = OS_ATT;
	O[c.t.oi].reg = ri;
}

static void op_destroy(void)
{
	struct cowsnap_name a = { 0 };
	struct expect e = { 0 };
	struct place pl;
	struct call c;
	int nc, k;

	call_init(&c, OP_DESTROY);
	pick_target(&c.t, 3);
	do {
		/* Only our own names, or another's when it must fail. */
		gen_name(a.name, S.nobody, true);
		nc = name_class(a.name, &k);
	} while (nc == NM_FOREIGN && !S.nobody);
	a.flags = gen_flags32();
	a.reserved = gen_flags32();
	place_arg(&pl, &a, sizeof(a), 0);
	nc = name_class(a.name, &k);
	ioc_expect(&c.t, &e, false, false);
	if (!pl.rd) {
		e.must |= EB(EFAULT);
	} else {
		if (a.flags || a.reserved || nc == NM_BAD)
			e.must |= EB(EINVAL) | name_nonul(a.name);
		if (nc == NM_NONE || (nc == NM_SLOT && slot_reg[k] < 0))
			e.must |= EB(ENOENT);
		if (nc == NM_FOREIGN)	/* nobody, on root's regions */
			e.must |= E2(EPERM, ENOENT);
	}
	do_ioctl(&c, COWSNAP_IOC_DESTROY, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret == 0 && nc == NM_SLOT && slot_reg[k] >= 0) {
		R[slot_reg[k]].destroyed = true;
		slot_reg[k] = -1;
	}
}

static void op_info(void)
{
	struct cowsnap_info a;
	struct expect e = { 0 };
	struct place pl;
	struct call c;
	struct region *r;
	bool wr;
	int ri;

	call_init(&c, OP_INFO);
	pick_target(&c.t, 5);
	memset(&a, 0xa5, sizeof(a));	/* all out: ignored */
	place_arg(&pl, &a, sizeof(a), -1);
	ioc_expect(&c.t, &e, true, false);
	if (!pl.wr)
		e.must |= EB(EFAULT);
	do_ioctl(&c, COWSNAP_IOC_INFO, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret < 0 || c.t.kind != FD_HANDLE)
		return;
	handle_attached_unknown(&c.t);
	if (!place_get(&pl, &a, sizeof(a)) ||
	    (pl.cls == PC_LIVE && !R[M[pl.mi].reg].exact))
		return;
	/* Learn a region the handle got attached to behind our back. */
	if (O[c.t.oi].reg < 0 && (ri = reg_new()) >= 0) {
		O[c.t.oi].reg = ri;
		R[ri].size = a.size;
		memcpy(R[ri].name, a.name, 64);
		R[ri].name[63] = 0;
		return;
	}
	r = target_region(&c.t);
	if (!r)
		return;
	wr = c.t.wr;
	if ((r->size && a.size != r->size) ||
	    !!(a.flags & COWSNAP_INFO_WRITABLE) != wr ||
	    (a.flags & ~3U) || a.reserved[0] || a.reserved[1] ||
	    a.reserved[2] || a.reserved[3] ||
	    a.resident_pages > a.size / PG ||
	    a.shared_pages > a.resident_pages ||
	    (r->mine && (a.mode != r->mode || a.uid != r->uid)) ||
	    (r->mine && !!(a.flags & COWSNAP_INFO_DESTROYED) != r->destroyed) ||
	    (r->mine && !r->destroyed && strcmp(a.name, r->name)) ||
	    ((a.flags & COWSNAP_INFO_DESTROYED) && a.name[0]) ||
	    (r->exact && (a.nr_snapshots != (uint64_t)r->nids ||
			  a.newest_snapshot != ids_newest(r))))
		report(&c, NULL, "INFO: name \"%.63s\" size %llu resident %llu shared %llu snapshots %llu newest %llu uid %u mode %#o flags %#x; model: size %llu nids %d newest %llu mode %#o%s%s",
		       a.name, (unsigned long long)a.size,
		       (unsigned long long)a.resident_pages,
		       (unsigned long long)a.shared_pages,
		       (unsigned long long)a.nr_snapshots,
		       (unsigned long long)a.newest_snapshot, a.uid, a.mode,
		       a.flags, (unsigned long long)r->size, r->nids,
		       (unsigned long long)ids_newest(r), r->mode,
		       r->destroyed ? " destroyed" : "",
		       r->exact ? " exact" : "");
	if (!r->size)
		r->size = a.size;
}

/*
 * Right after snapshot @i of exact region @r: a store through any mapping
 * of the region must copy the page, not reach the snapshot (a PTE left
 * writable by SNAP_CREATE would).  Store into up to four mappings, then
 * read the snapshot back.
 */
static void probe_stores(const struct call *sc, struct region *r, int i)
{
	struct cowsnap_snap_open so = { .id = r->ids[i] };
	struct target st = { .fi = -1, .kind = FD_SNAP, .ri = sc->t.ri };
	struct expect e = { .maybe = E3(EMFILE, ENFILE, ENOMEM) };
	struct call c;
	int mi, n = 0, sfd;
	uint64_t h;

	for (mi = 0; mi < NMAP && n < 4; mi++) {
		struct map *m = &M[mi];
		volatile char *p;

		if (!m->used || !m->pristine || m->kind != MK_LIVE ||
		    !(m->prot & PROT_WRITE) || m->reg != sc->t.ri)
			continue;
		p = m->addr + rn(m->len);
		if (guarded_copy((char *)p, "\xa5", 1)) {
			report(sc, NULL, "store into live map %p after SNAP_CREATE faulted",
			       (void *)p);
			return;
		}
		n++;
	}
	if (!n)
		return;
	call_init(&c, OP_SNAP_OPEN);
	c.var = "probe";
	c.t = sc->t;
	c.imglen = sizeof(so);
	memcpy(c.img, &so, sizeof(so));
	call_done(&c, ioctl(sc->t.fd, COWSNAP_IOC_SNAP_OPEN, &so));
	verdict(&c, &e);
	if (c.ret < 0)
		return;
	sfd = c.ret;
	h = content_hash(&st, sfd, r->size, "hash-probe");
	if (h && h != r->hash[i])
		report(sc, NULL, "stores through %d live mapping(s) right after SNAP_CREATE changed snapshot %llu (hash %#llx, was %#llx): a PTE stayed writable",
		       n, (unsigned long long)r->ids[i],
		       (unsigned long long)h, (unsigned long long)r->hash[i]);
	close_checked(sfd);
}

static void op_snap_create(void)
{
	struct cowsnap_snap_create a = { 0 };
	struct expect e = { .maybe = EB(ENOMEM) };
	struct place pl;
	struct call c;
	struct region *r;
	int i;

	call_init(&c, OP_SNAP_CREATE);
	pick_target(&c.t, 3);
	r = target_region(&c.t);
	gen_label(a.label);
	a.flags = gen_flags32();
	a.reserved = gen_flags32();
	a.id = rnd();		/* out: ignored */
	place_arg(&pl, &a, sizeof(a), -1);
	ioc_expect(&c.t, &e, true, true);
	if (!pl.rd) {
		e.must |= EB(EFAULT);
	} else {
		if (a.flags || a.reserved || !name_ok(a.label, true))
			e.must |= EB(EINVAL) | name_nonul(a.label);
		if (!pl.wr)
			e.must |= EB(EFAULT);
		if (r && r->exact && (unsigned int)r->nids >= max_snapshots)
			e.must |= EB(ENOSPC);
	}
	do_ioctl(&c, COWSNAP_IOC_SNAP_CREATE, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret < 0)
		return;
	handle_attached_unknown(&c.t);
	if (!r || !place_get(&pl, &a, sizeof(a)) ||
	    (pl.cls == PC_LIVE && !R[M[pl.mi].reg].exact))
		return;
	if (r->exact && a.id != r->next_id)
		report(&c, NULL, "SNAP_CREATE: id %llu, want %llu",
		       (unsigned long long)a.id,
		       (unsigned long long)r->next_id);
	else if (a.id <= r->last_id)
		report(&c, NULL, "SNAP_CREATE: id %llu after %llu in this region",
		       (unsigned long long)a.id,
		       (unsigned long long)r->last_id);
	r->last_id = a.id;
	if (a.id >= r->next_id)
		r->next_id = a.id + 1;
	ids_add(r, a.id, a.label);
	/*
	 * Nobody else can write an exact region: its live view now is the
	 * snapshot's contents (unless the id just went into the live view).
	 */
	if (r->exact && pl.cls != PC_LIVE && hashable(r, &c.t) &&
	    (i = ids_find(r, a.id)) >= 0) {
		r->hash[i] = content_hash(&c.t, c.t.fd, r->size, "hash-live");
		if (r->hash[i])
			probe_stores(&c, r, i);
	}
}

static void op_snap_list(void)
{
	static struct cowsnap_snap_entry ent[64];
	struct cowsnap_snap_list a = { 0 };
	struct expect e = { .maybe = EB(ENOMEM) };
	static const uint32_t counts[] = { 0, 1, 2, 3, 63, 64, 65, 1000,
					   UINT32_MAX };
	struct region *r;
	struct place pl;
	struct outbuf q;
	struct call c;
	uint32_t cap, n = 0, i;
	int first = 0;
	bool n_known = false;

	call_init(&c, OP_SNAP_LIST);
	pick_target(&c.t, 3);
	r = target_region(&c.t);
	switch (rn(6)) {
	case 0:
	case 1:
		a.start_id = 0;
		break;
	case 2:
		a.start_id = r && r->nids ? r->ids[rn(r->nids)] : 1;
		break;
	case 3:
		a.start_id = r && r->nids ? r->ids[rn(r->nids)] + 1 : 2;
		break;
	default:
		a.start_id = gen_id(r);
		break;
	}
	a.count = chance(70) ? counts[rn(9)] : rn(80);
	a.flags = gen_flags32();
	a.next_id = rnd();	/* out */
	cap = a.count < 64 ? a.count : 64;
	place_out(&q, sizeof(ent[0]), cap);
	a.entries = q.p;
	c.pc2 = q.cls;
	c.ptr2 = q.p;
	place_arg(&pl, &a, sizeof(a), -1);
	ioc_expect(&c.t, &e, true, false);
	if (r && r->exact) {
		while (first < r->nids && r->ids[first] < a.start_id)
			first++;
		n = r->nids - first;
		if (n > cap)
			n = cap;
		n_known = true;
	}
	if (!pl.rd) {
		e.must |= EB(EFAULT);
	} else {
		if (a.flags || !a.count)
			e.must |= EB(EINVAL);
		if (n_known && q.room < (int64_t)(n * sizeof(ent[0])))
			e.must |= EB(EFAULT);
		else if (!n_known && cap && q.room < (int64_t)sizeof(ent[0]) *
			 (int64_t)cap)
			e.maybe |= EB(EFAULT);
		if (!pl.wr)
			e.must |= EB(EFAULT);
	}
	do_ioctl(&c, COWSNAP_IOC_SNAP_LIST, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret < 0)
		return;
	handle_attached_unknown(&c.t);
	if (!place_get(&pl, &a, sizeof(a)) ||
	    (pl.cls == PC_LIVE && !R[M[pl.mi].reg].exact))
		return;
	if (a.count > cap) {
		report(&c, NULL, "SNAP_LIST: count %u > capacity %u", a.count,
		       cap);
		return;
	}
	if (q.cls != PC_GOOD && q.cls != PC_STRADDLE && q.cls != PC_LIVE)
		return;
	if (a.count && guarded_copy(ent, (void *)(uintptr_t)q.p,
				    a.count * sizeof(ent[0])))
		return;
	for (i = 0; i < a.count; i++) {
		const struct cowsnap_snap_entry *x = &ent[i];

		if (x->id < a.start_id || (i && x->id <= ent[i - 1].id) ||
		    !name_ok(x->label, true) || !x->ctime_ns ||
		    x->exclusive_pages > x->referenced_pages ||
		    (r && r->size && x->referenced_pages > r->size / PG))
			break;
		if (n_known && (x->id != r->ids[first + i] ||
				strcmp(x->label, r->labels[first + i])))
			break;
	}
	if (i < a.count || (a.next_id && a.count &&
			    a.next_id <= ent[a.count - 1].id) ||
	    (n_known && (a.count != n ||
			 a.next_id != (first + (int)n < r->nids ?
				       r->ids[first + n] : 0))))
		report(&c, NULL, "SNAP_LIST: count %u next_id %llu, entry %u: id %llu label \"%.63s\" referenced %llu exclusive %llu; model: %u entries from index %d of %d",
		       a.count, (unsigned long long)a.next_id, i,
		       i < a.count ? (unsigned long long)ent[i].id : 0ULL,
		       i < a.count ? ent[i].label : "",
		       i < a.count ?
		       (unsigned long long)ent[i].referenced_pages : 0ULL,
		       i < a.count ?
		       (unsigned long long)ent[i].exclusive_pages : 0ULL,
		       n, first, r ? r->nids : -1);
}

static void op_snap_delete(void)
{
	struct cowsnap_snap_id a = { 0 };
	struct expect e = { 0 };
	struct place pl;
	struct call c;
	struct region *r;
	int i;

	call_init(&c, OP_SNAP_DELETE);
	pick_target(&c.t, 3);
	r = target_region(&c.t);
	a.id = gen_id(r);
	a.flags = gen_flags32();
	a.reserved = gen_flags32();
	place_arg(&pl, &a, sizeof(a), -1);
	ioc_expect(&c.t, &e, true, true);
	if (!pl.rd) {
		e.must |= EB(EFAULT);
	} else {
		if (a.flags || a.reserved)
			e.must |= EB(EINVAL);
		if (r && r->exact && ids_find(r, a.id) < 0)
			e.must |= EB(ENOENT);
		else if (!r || !r->exact)
			e.maybe |= EB(ENOENT);
	}
	do_ioctl(&c, COWSNAP_IOC_SNAP_DELETE, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret < 0)
		return;
	handle_attached_unknown(&c.t);
	if (r && (i = ids_find(r, a.id)) >= 0)
		ids_del(r, i);
}

static void op_snap_open(void)
{
	struct cowsnap_snap_open a = { 0 };
	struct expect e = { .maybe = E3(EMFILE, ENFILE, ENOMEM) };
	struct place pl;
	struct call c;
	struct region *r;
	int fi, fl, i;

	call_init(&c, OP_SNAP_OPEN);
	pick_target(&c.t, 3);
	r = target_region(&c.t);
	a.id = gen_id(r);
	a.flags = chance(60) ? COWSNAP_OPEN_CLOEXEC : chance(80) ? 0 :
		  gen_flags32();
	a.reserved = gen_flags32();
	place_arg(&pl, &a, sizeof(a), -1);
	ioc_expect(&c.t, &e, true, false);
	if (!pl.rd) {
		e.must |= EB(EFAULT);
	} else {
		if ((a.flags & ~COWSNAP_OPEN_CLOEXEC) || a.reserved)
			e.must |= EB(EINVAL);
		if (r && r->exact && ids_find(r, a.id) < 0)
			e.must |= EB(ENOENT);
		else if (!r || !r->exact)
			e.maybe |= EB(ENOENT);
	}
	do_ioctl(&c, COWSNAP_IOC_SNAP_OPEN, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret < 0)
		return;
	handle_attached_unknown(&c.t);
	for (fi = 0; fi < NFD; fi++)
		if (F[fi].fd == c.ret)
			report(&c, NULL, "SNAP_OPEN returned fd %ld, already open",
			       c.ret);
	fl = fcntl(c.ret, F_GETFD);
	if (fl < 0 || !!(fl & FD_CLOEXEC) != !!(a.flags & COWSNAP_OPEN_CLOEXEC))
		report(&c, NULL, "SNAP_OPEN: F_GETFD %d (errno %d) for flags %#x",
		       fl, errno, a.flags);
	/* Snapshots never change: the same contents every time we look. */
	if (r && r->size && r->size <= HASH_CAP &&
	    (i = ids_find(r, a.id)) >= 0) {
		struct target st = { .fi = -1, .kind = FD_SNAP, .ri = c.t.ri };
		uint64_t h = content_hash(&st, c.ret, r->size, "hash-snapshot");

		if (h && r->hash[i] && h != r->hash[i])
			report(&c, NULL, "snapshot %llu changed: contents hash %#llx, was %#llx",
			       (unsigned long long)a.id,
			       (unsigned long long)h,
			       (unsigned long long)r->hash[i]);
		else if (h)
			r->hash[i] = h;
	}
	fi = fd_free_slot();
	if (fi < 0 || nfds() >= NFD - 2) {
		close_checked(c.ret);
		return;
	}
	F[fi].fd = c.ret;
	F[fi].kind = FD_SNAP;
	F[fi].reg = c.t.ri;
	F[fi].size = r ? r->size : 0;
	F[fi].id = a.id;
	F[fi].shared = false;
	F[fi].pos = 0;
}

static void op_restore(void)
{
	struct cowsnap_restore a = { 0 };
	struct expect e = { .maybe = EB(ENOMEM) };
	struct place pl;
	struct call c;
	struct region *r;
	uint64_t newest;
	int i;

	call_init(&c, OP_RESTORE);
	pick_target(&c.t, 3);
	r = target_region(&c.t);
	newest = r ? ids_newest(r) : 0;
	a.id = gen_id(r);
	switch (rn(8)) {
	case 0:
		a.expect_newest = newest;
		break;
	case 1:
		a.expect_newest = newest + 1;
		break;
	case 2:
		a.expect_newest = gen_id(r);
		break;
	default:
		a.expect_newest = 0;
		break;
	}
	a.flags = gen_flags32();
	a.reserved = gen_flags32();
	a.pages_restored = rnd();	/* out */
	place_arg(&pl, &a, sizeof(a), -1);
	ioc_expect(&c.t, &e, true, true);
	if (!pl.rd) {
		e.must |= EB(EFAULT);
	} else {
		if (a.flags || a.reserved)
			e.must |= EB(EINVAL);
		if (!pl.wr)
			e.must |= EB(EFAULT);
		if (r && r->exact) {
			if (ids_find(r, a.id) < 0)
				e.must |= EB(ENOENT);
			if (a.expect_newest && a.expect_newest != newest)
				e.must |= EB(EXDEV);
		} else {
			e.maybe |= EB(ENOENT) |
				   (a.expect_newest ? EB(EXDEV) : 0);
		}
	}
	do_ioctl(&c, COWSNAP_IOC_RESTORE, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret < 0)
		return;
	handle_attached_unknown(&c.t);
	if (!r || pl.cls == PC_LIVE)
		return;
	if (r->size && place_get(&pl, &a, sizeof(a)) &&
	    a.pages_restored > r->size / PG)
		report(&c, NULL, "RESTORE: %llu pages restored of %llu",
		       (unsigned long long)a.pages_restored,
		       (unsigned long long)(r->size / PG));
	/* The live view is the snapshot now. */
	if (r->exact && hashable(r, &c.t) && (i = ids_find(r, a.id)) >= 0 &&
	    r->hash[i]) {
		uint64_t h = content_hash(&c.t, c.t.fd, r->size,
					  "hash-restored");

		if (h && h != r->hash[i])
			report(&c, NULL, "after RESTORE of %llu the live view hashes %#llx, the snapshot %#llx",
			       (unsigned long long)a.id,
			       (unsigned long long)h,
			       (unsigned long long)r->hash[i]);
	}
}

static void op_diff(void)
{
	static struct cowsnap_extent ext[1024];
	static const uint32_t counts[] = { 0, 1, 2, 3, 1023, 1024, 1025,
					   UINT32_MAX };
	struct cowsnap_diff a = { 0 };
	struct expect e = { .maybe = EB(ENOMEM) };
	struct region *r;
	struct place pl;
	struct outbuf q;
	struct call c;
	uint64_t np = 0, end = 0;
	uint32_t cap, i;
	bool none;

	call_init(&c, OP_DIFF);
	pick_target(&c.t, 3);
	r = target_region(&c.t);
	if (r)
		np = r->size / PG;
	a.from = chance(30) ? 0 : gen_id(r);
	a.to = chance(50) ? 0 : chance(20) ? a.from : gen_id(r);
	switch (rn(8)) {
	case 0:
		a.start = np ? rn(np) : 1;
		break;
	case 1:
		a.start = np ? np - 1 : 0;
		break;
	case 2:
		a.start = np;
		break;
	case 3:
		a.start = chance(50) ? UINT64_MAX : np + 1 + rn(100);
		break;
	default:
		a.start = 0;
		break;
	}
	a.count = chance(70) ? counts[rn(8)] : rn(2000);
	a.flags = gen_flags32();
	a.next = rnd();		/* out */
	cap = a.count < 1024 ? a.count : 1024;
	place_out(&q, sizeof(ext[0]), cap ? cap : 1);
	a.extents = q.p;
	c.pc2 = q.cls;
	c.ptr2 = q.p;
	place_arg(&pl, &a, sizeof(a), -1);
	ioc_expect(&c.t, &e, true, false);
	/* Nothing to report: a walk past the end, or a view against itself. */
	none = (np && a.start >= np) || a.from == a.to;
	if (!pl.rd) {
		e.must |= EB(EFAULT);
	} else {
		if (a.flags || !a.count)
			e.must |= EB(EINVAL);
		if (r && r->exact) {
			if ((a.from && ids_find(r, a.from) < 0) ||
			    (a.to && ids_find(r, a.to) < 0))
				e.must |= EB(ENOENT);
		} else if (a.from || a.to) {
			e.maybe |= EB(ENOENT);
		}
		if (!none && q.room < (int64_t)(cap * sizeof(ext[0])))
			e.maybe |= EB(EFAULT);
		if (!pl.wr)
			e.must |= EB(EFAULT);
	}
	do_ioctl(&c, COWSNAP_IOC_DIFF, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret < 0)
		return;
	handle_attached_unknown(&c.t);
	if (!place_get(&pl, &a, sizeof(a)) ||
	    (pl.cls == PC_LIVE && !R[M[pl.mi].reg].exact))
		return;
	if (a.count > cap || (none && (a.count || a.next))) {
		report(&c, NULL, "DIFF: count %u next %llu (capacity %u%s)",
		       a.count, (unsigned long long)a.next, cap,
		       none ? ", nothing can differ" : "");
		return;
	}
	if ((q.cls != PC_GOOD && q.cls != PC_STRADDLE && q.cls != PC_LIVE) ||
	    (a.count && guarded_copy(ext, (void *)(uintptr_t)q.p,
				     a.count * sizeof(ext[0]))))
		return;
	c.pc2 = q.cls;
	for (i = 0; i < a.count; i++) {
		if (!ext[i].count || ext[i].start < a.start ||
		    (i && ext[i].start <= end) ||
		    ext[i].start + ext[i].count < ext[i].start ||
		    (np && ext[i].start + ext[i].count > np))
			break;
		end = ext[i].start + ext[i].count;
	}
	if (i < a.count || (a.next && a.count && a.next <= end) ||
	    (np && a.next >= np))
		report(&c, NULL, "DIFF: count %u next %llu, extent %u: start %llu count %llu (region %llu pages)",
		       a.count, (unsigned long long)a.next, i,
		       i < a.count ? (unsigned long long)ext[i].start : 0ULL,
		       i < a.count ? (unsigned long long)ext[i].count : 0ULL,
		       (unsigned long long)np);
}

static void op_clone(void)
{
	struct cowsnap_clone a = { 0 };
	struct expect e = { .maybe = EB(ENOMEM) };
	struct place pl;
	struct call c;
	struct region *r;
	int nc, k;

	call_init(&c, OP_CLONE);
	pick_target(&c.t, 3);
	r = target_region(&c.t);
	a.id = gen_id(r);
	gen_name(a.name, false, false);
	a.mode = gen_mode();
	a.flags = gen_flags32();
	a.reserved = gen_rsv64();
	place_arg(&pl, &a, sizeof(a), offsetof(struct cowsnap_clone, name));
	nc = name_class(a.name, &k);
	ioc_expect(&c.t, &e, true, true);
	if (!pl.rd) {
		e.must |= EB(EFAULT);
	} else {
		if (a.flags || a.reserved || (a.mode & ~0777) || nc == NM_BAD)
			e.must |= EB(EINVAL) | name_nonul(a.name);
		if (nc == NM_SLOT && slot_reg[k] >= 0)
			e.must |= EB(EEXIST);
		if (r && r->exact && ids_find(r, a.id) < 0)
			e.must |= EB(ENOENT);
		else if (!r || !r->exact)
			e.maybe |= EB(ENOENT);
	}
	do_ioctl(&c, COWSNAP_IOC_CLONE, &pl, &a, sizeof(a));
	verdict(&c, &e);
	if (c.ret < 0) {
		if (nc == NM_SLOT && slot_reg[k] < 0 && c.err != EEXIST &&
		    c.t.kind == FD_HANDLE)
			probe_not_created(&c, a.name);
		return;
	}
	handle_attached_unknown(&c.t);
	if (nc == NM_SLOT)
		slot_region(k, r ? r->size : 0, a.mode, S.ns_private);
}

/* A command no one implements: ENOTTY, whatever the argument. */
static void op_badcmd(void)
{
	const unsigned long *valid = valid_cmds;
	struct expect e = { .only = EB(ENOTTY) };
	struct call c;
	unsigned long cmd, dir, nr, size, type = 0xC5;
	struct place pl;
	unsigned char junk[64];
	unsigned int i;

	call_init(&c, OP_BADCMD);
	pick_target(&c.t, 15);
	if (c.t.kind == FD_SNAP && chance(50)) {
		/* Snapshot fds take no ioctl, not even cowsnap's own. */
		cmd = valid[rn(NVALID)];
		c.var = "cowsnap-cmd-on-snapfd";
		goto go;
	}
again:
	dir = rn(4);
	size = chance(70) ? rn(256) : rn(1 << 14);
	nr = rn(0x20);
	switch (rn(5)) {
	case 0:		/* a real number with the wrong size */
		cmd = valid[rn(NVALID)];
		cmd = _IOC(_IOC_DIR(cmd), 0xC5, _IOC_NR(cmd), size);
		c.var = "wrong-size";
		break;
	case 1:		/* a real number with the wrong direction */
		cmd = valid[rn(NVALID)];
		cmd = _IOC(dir, 0xC5, _IOC_NR(cmd), _IOC_SIZE(cmd));
		c.var = "wrong-dir";
		break;
	case 2:		/* numbers past the last one */
		nr = NVALID + rn(0x100 - NVALID);
		cmd = _IOC(dir, 0xC5, nr, size);
		c.var = "unknown-nr";
		break;
	case 3:		/* other types (the VFS owns 0, T, f, X, 0x94) */
		do {
			type = rn(256);
		} while (type == 0 || type == 'T' || type == 'f' ||
			 type == 'X' || type == 0x94 || type == 0xC5);
		cmd = _IOC(dir, type, rn(256), size);
		c.var = "other-type";
		break;
	default:
		cmd = (uint32_t)rnd();
		type = _IOC_TYPE(cmd);
		if (type == 0 || type == 'T' || type == 'f' || type == 'X' ||
		    type == 0x94)
			goto again;
		c.var = "random";
		break;
	}
	for (i = 0; i < NVALID; i++)
		if ((uint32_t)cmd == valid[i])
			goto again;
go:
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = rnd();
	place_arg(&pl, junk, 64, -1);
	if (c.t.kind == FD_NONE)
		e.only = EB(EBADF);
	do_ioctl(&c, cmd, &pl, junk, 0);
	verdict(&c, &e);
}

/* read()/pread() and write()/pwrite() of a handle or snapshot fd. */
static void op_rw(bool write_op)
{
	struct expect e = { 0 };
	struct call c;
	struct buf b;
	uint64_t size = 0, len, n = 0;
	int64_t pos = 0, avail;
	bool sk, pk, pr = chance(50), n_known = false;
	long ret;
	int ok;

	call_init(&c, write_op ? OP_WRITE : OP_READ);
	pick_target(&c.t, write_op ? 15 : 30);
	sk = size_of(&c.t, &size);
	len = gen_len(sk ? size : 0);
	if (clean && sk && size)
		len = 1 + rn(size < ARENA_SIZE ? size : ARENA_SIZE);
	place_buf(&b, &len, !write_op);
	if (pr) {
		pos = gen_off(sk ? size : 0);
		if (clean && sk && size)
			pos = rn(size - (len < size ? len : size) + 1);
		pk = true;
		c.var = write_op ? "pwrite" : "pread";
	} else {
		pk = pos_of(&c.t, &pos);
	}
	c.pc = b.cls;
	c.ptr = (uintptr_t)b.p;
	c.a[0] = len;
	c.a[1] = pos;
	c.a[2] = size;
	avail = write_op ? b.rdok : b.wrok;
	/* pread()/pwrite() check the offset before the fd. */
	if (pr && pos < 0) {
		e.only = EB(EINVAL);
		goto call;
	}
	if (pr && write_op && c.t.kind == FD_SNAP) {
		/* Read-only: EBADF like write(). */
		e.only = EB(EBADF);
		goto call;
	}
	if (c.t.kind == FD_NONE ||
	    (c.t.kind == FD_HANDLE && (write_op ? !c.t.wr : !c.t.rd)) ||
	    (c.t.kind == FD_SNAP && write_op)) {
		e.only = EB(EBADF);
		goto call;
	}
	ok = uaccess_ok((uintptr_t)b.p, len);
	if (!ok)
		e.must |= EB(EFAULT);
	else if (ok < 0)
		e.maybe |= EB(EFAULT);
	if ((int64_t)len < 0 || (pk && pos < 0) ||
	    (pk && (int64_t)((uint64_t)pos + len) < 0))
		e.must |= EB(EINVAL);
	if (c.t.kind == FD_HANDLE && c.t.att == 0)
		e.must |= EB(EINVAL);
	if (write_op)
		e.maybe |= EB(ENOMEM);
	if (e.must)
		goto call;
	if (c.t.kind == FD_HANDLE && c.t.att < 0)
		e.maybe |= EB(EINVAL);
	if (sk && pk && ok > 0 && (c.t.kind == FD_SNAP || c.t.att == 1)) {
		uint64_t l = len > MAX_RW ? MAX_RW : len;

		n = (uint64_t)pos >= size ? 0 : size - pos < l ? size - pos : l;
		n_known = true;
		if (write_op && len && (uint64_t)pos >= size)
			e.must |= EB(ENOSPC);
		else if (n && avail == 0)
			e.must |= EB(EFAULT);
		else if (n && avail < (int64_t)n)
			e.maybe |= EB(EFAULT);
	} else {
		e.maybe |= EB(EFAULT) | (write_op ? EB(ENOSPC) : 0);
	}
call:
	if (write_op)
		ret = pr ? pwrite(c.t.fd, b.p, len, pos) :
			   write(c.t.fd, b.p, len);
	else
		ret = pr ? pread(c.t.fd, b.p, len, pos) :
			   read(c.t.fd, b.p, len);
	call_done(&c, ret);
	verdict(&c, &e);
	if (ret < 0)
		return;
	if ((uint64_t)ret > len || (avail >= 0 && ret > avail && ret > 0) ||
	    (n_known && avail >= (int64_t)n && (uint64_t)ret != n) ||
	    (n_known && (uint64_t)ret > n))
		report(&c, &e, "%s returned %ld: want %llu (length %llu, %lld bytes accessible)",
		       op_name[c.op], ret, (unsigned long long)n,
		       (unsigned long long)len, (long long)avail);
	if (!pr && pk)
		pos_set(&c.t, pos + ret);
	if (c.t.kind == FD_HANDLE && c.t.att < 0)
		handle_attached_unknown(&c.t);
}

static void op_lseek(void)
{
	static const int bad_whence[] = { SEEK_DATA, SEEK_HOLE, 5, -1, 100 };
	struct expect e = { 0 };
	struct call c;
	uint64_t size;
	int64_t pos = 0, off, np = 0;
	int whence;
	bool sk, pk, np_known = false;
	long long ret;

	call_init(&c, OP_LSEEK);
	pick_target(&c.t, 30);
	sk = size_of(&c.t, &size);
	pk = pos_of(&c.t, &pos);
	whence = chance(88) ? (int)rn(3) : bad_whence[rn(5)];
	switch (rn(10)) {
	case 0:
		off = sk ? -(int64_t)size : -1;
		break;
	case 1:
		off = INT64_MIN;
		break;
	default:
		off = gen_off(sk ? size : 0);
		break;
	}
	c.a[0] = off;
	c.a[1] = whence;
	c.a[2] = pos;
	c.a[3] = size;
	if (c.t.kind == FD_NONE) {
		e.only = EB(EBADF);
	} else if (whence < 0 || whence > SEEK_END) {
		e.must |= EB(EINVAL);
	} else if (sk && (whence != SEEK_CUR || pk)) {
		np = whence == SEEK_SET ? off :
		     whence == SEEK_CUR ? (int64_t)((uint64_t)pos + off) :
		     (int64_t)(size + (uint64_t)off);
		if (whence == SEEK_CUR && !off)
			np = pos;
		if (np < 0 || (uint64_t)np > size)
			e.must |= EB(EINVAL);
		else
			np_known = true;
	} else {
		e.any = true;
	}
	ret = lseek(c.t.fd, off, whence);
	call_done(&c, ret);
	verdict(&c, &e);
	if (ret < 0)
		return;
	if ((np_known && ret != np) || (sk && (uint64_t)ret > size))
		report(&c, &e, "lseek returned %lld, want %lld (size %llu)",
		       ret, (long long)np, (unsigned long long)size);
	pos_set(&c.t, ret);
}

/* Add a mapping the kernel made to the model (or unmap it). */
static void map_track(char *p, size_t len, uint64_t off, int kind, int prot,
		      int ri, bool maywrite)
{
	int mi = map_free_slot();
	struct call c;
	struct expect e = { 0 };

	if (mi < 0) {
		call_init(&c, OP_MUNMAP);
		c.var = "untracked";
		c.ptr = (uintptr_t)p;
		c.a[0] = len;
		call_done(&c, munmap(p, len));
		verdict(&c, &e);
		return;
	}
	M[mi].used = true;
	M[mi].addr = p;
	M[mi].len = len;
	M[mi].off = off;
	M[mi].kind = kind;
	M[mi].prot = prot;
	M[mi].reg = ri;
	M[mi].pristine = true;
	M[mi].maywrite = maywrite;
	M[mi].dontfork = false;
}

static void op_munmap(void);

static void op_mmap(void)
{
	static const int prots[] = {
		PROT_READ, PROT_READ, PROT_READ, PROT_READ | PROT_WRITE,
		PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
		PROT_READ | PROT_WRITE, PROT_WRITE, PROT_NONE,
		PROT_READ | PROT_EXEC, PROT_EXEC,
	};
	struct expect e = { .maybe = EB(ENOMEM) };
	struct call c;
	uint64_t size = 0, np, off = 0, len = PG, alen;
	int prot = prots[rn(11)], flags = MAP_SHARED, mi, ri, type;
	char *addr = NULL, *p;
	bool sk, fixed = false;

	call_init(&c, OP_MMAP);
	pick_target(&c.t, 25);
	sk = size_of(&c.t, &size) && size;
	np = size / PG;
	switch (rn(14)) {
	case 5:			/* the last page */
		off = np ? size - PG : 0;
		break;
	case 6:			/* beyond the end */
		if (size > MAP_CAP) {
			off = size - PG;
			len = 2 * PG;
		} else {
			len = size + PG;
		}
		break;
	case 7:			/* at the end */
		off = size;
		break;
	case 8:
		len = 0;
		break;
	case 9:			/* rounds up */
		len = PG * rn(np && np < 8 ? np : 4) + 1 + rn(PG - 1);
		break;
	case 10:
		off = 1 + rn(PG - 1);
		break;
	case 11:
		switch (rn(4)) {
		case 0:
			len = 1ULL << 46;
			break;
		case 1:
			off = 1ULL << 62;
			break;
		case 2:
			off = UINT64_MAX & ~(PG - 1);
			break;
		default:
			len = UINT64_MAX - PG;
			break;
		}
		break;
	default:		/* the region, or a window of it */
		if (!sk)
			len = PG * (1 + rn(4));
		else if (chance(50) && size <= MAP_CAP)
			len = size;
		else {
			off = PG * rn(np);
			len = PG * (1 + rn(np - off / PG));
			if (len > MAP_CAP)
				len = PG * (1 + rn(MAP_CAP / PG));
		}
		break;
	}
	switch (rn(100)) {
	case 0 ... 7:
		flags = MAP_PRIVATE;
		break;
	case 8 ... 12:
		flags = MAP_SHARED_VALIDATE;
		break;
	case 13 ... 14:
		flags = MAP_SHARED_VALIDATE | MAP_SYNC;
		break;
	case 15:
		flags = 0;
		break;
	}
	if (clean) {
		flags = MAP_SHARED;
		prot = c.t.wr && c.t.kind == FD_HANDLE ?
		       PROT_READ | PROT_WRITE : PROT_READ;
		if (sk) {
			off = PG * rn(np);
			len = PG * (1 + rn(np - off / PG));
			if (len > MAP_CAP)
				len = MAP_CAP;
		}
	}
	if (len <= POP_CAP && chance(12))
		flags |= chance(70) ? MAP_POPULATE : MAP_LOCKED;
	if (!clean && chance(3))
		flags |= MAP_HUGETLB;
	if (chance(3))
		flags |= MAP_NORESERVE;
	mi = pick_any_map(true);
	if (chance(5) && len <= MAP_CAP && (addr = free_landing())) {
		flags |= MAP_FIXED;
		fixed = true;
	} else if (chance(4) && mi >= 0) {
		addr = M[mi].addr;
		if (len > M[mi].len)
			len = M[mi].len;
		flags |= chance(50) ? MAP_FIXED : MAP_FIXED_NOREPLACE;
		fixed = flags & MAP_FIXED;
		if (!(flags & MAP_FIXED))
			e.must |= EB(EEXIST);
	} else if (chance(2)) {
		addr = M[0].addr + 1;
		flags |= MAP_FIXED;
		e.must |= EB(EINVAL);
		fixed = true;
	}
	c.a[0] = (uintptr_t)addr;
	c.a[1] = len;
	c.a[2] = prot;
	c.a[3] = flags;
	c.a[4] = off;
	type = flags & MAP_SHARED_VALIDATE;
	alen = (len + PG - 1) & ~(PG - 1);
	if (c.t.kind == FD_NONE) {
		/* The offset is checked before the fd. */
		e.only = EB(EBADF) | (off % PG ? EB(EINVAL) : 0);
		goto call;
	}
	if (!len || off % PG || !type)
		e.must |= EB(EINVAL);
	if (type == MAP_SHARED_VALIDATE && (flags & MAP_SYNC))
		e.must |= EB(EOPNOTSUPP);
	if (flags & MAP_HUGETLB)
		e.must |= EB(EINVAL);
	if (len && (alen < len || alen > (1ULL << 47)))
		e.must |= EB(ENOMEM);
	if (off / PG + alen / PG < off / PG ||
	    (alen <= (1ULL << 47) && off / PG > (UINT64_MAX - alen) / PG))
		e.must |= EB(EOVERFLOW);	/* also file_mmap_ok() */
	if (prot & PROT_EXEC)
		e.maybe |= EB(EPERM);
	if (flags & MAP_LOCKED)
		e.maybe |= EB(EAGAIN);
	/* The VFS: any mapping needs read, a shared writable one write. */
	if (!c.t.rd || ((type & MAP_SHARED) && (prot & PROT_WRITE) && !c.t.wr))
		e.must |= EB(EACCES);
	/* An unattached handle has nothing to map. */
	if (c.t.kind == FD_HANDLE && c.t.att == 0)
		e.must |= EB(EINVAL);
	else if (c.t.kind == FD_HANDLE && c.t.att < 0)
		e.maybe |= EB(EINVAL);
	if (type == MAP_PRIVATE)
		e.must |= EB(EINVAL);
	if (sk && (off / PG >= np || alen / PG > np - off / PG))
		e.must |= EB(EINVAL);
	if (!sk && (c.t.kind == FD_SNAP || c.t.att != 0))
		e.maybe |= EB(EINVAL);
call:
	p = mmap(addr, len, prot, flags, c.t.fd, off);
	call_done(&c, p == MAP_FAILED ? -1 : (long)(uintptr_t)p);
	verdict(&c, &e);
	if (p == MAP_FAILED) {
		if (fixed && addr && !((uintptr_t)addr % PG))
			map_unknown(addr, addr + alen);
		return;
	}
	if (fixed && p != addr)
		report(&c, &e, "MAP_FIXED mapped at %p", p);
	if (fixed)
		map_unmapped(p, p + alen);
	if (c.t.kind == FD_NONE || e.must || e.only) {
		munmap(p, alen);	/* reported; get rid of it */
		return;
	}
	ri = c.t.ri;
	map_track(p, alen, off, c.t.kind == FD_SNAP ? MK_SNAP : MK_LIVE, prot,
		  ri, c.t.kind == FD_HANDLE && c.t.wr);
	if (c.t.kind == FD_HANDLE && c.t.att < 0)
		handle_attached_unknown(&c.t);
}

static void op_munmap(void)
{
	struct expect e = { 0 };
	struct call c;
	int mi = pick_any_map(false), i;
	char *s, *land;
	size_t len;

	if (mi < 0)
		return op_mmap();
	for (i = 0; i < NMAP; i++)	/* maps with holes go first */
		if (M[i].used && !M[i].pristine)
			mi = i;
	call_init(&c, OP_MUNMAP);
	e.maybe = EB(ENOMEM);	/* splitting a VMA allocates */
	s = M[mi].addr;
	len = M[mi].len;
	switch (M[mi].pristine && nmaps() < NMAP - 2 ? rn(10) : 9) {
	case 0:		/* head */
	case 1:		/* tail */
	case 2:		/* middle */
		if (len > PG) {
			size_t k = PG * (1 + rn(len / PG - 1));

			if (rn(10) == 0)
				len = k;
			else if (rn(10) == 1)
				s += k, len -= k;
			else
				s += PG * rn(k / PG + 1), len = PG;
		}
		c.var = "part";
		break;
	case 3:
		s += 1 + rn(PG - 1);
		e.must |= EB(EINVAL);
		c.var = "unaligned";
		break;
	case 4:
		len = 0;
		e.must |= EB(EINVAL);
		c.var = "zero";
		break;
	case 5:
		if (chance(50)) {
			s = (char *)(uintptr_t)kaddr[rn(5)];
			e.must |= EB(EINVAL);
			c.var = "kernel";
		} else if ((land = free_landing())) {
			s = land;	/* nothing mapped there */
			c.var = "nothing";
		}
		break;
	default:
		c.var = "whole";
		break;
	}
	c.ptr = (uintptr_t)s;
	c.a[0] = len;
	call_done(&c, munmap(s, len));
	verdict(&c, &e);
	if (c.ret == 0)
		map_unmapped(s, s + len);
}

static void op_mremap(void)
{
	/* EFAULT: madvise() may have split the VMA under a model map. */
	struct expect e = { .maybe = E3(ENOMEM, EAGAIN, EFAULT) };
	struct call c;
	int mi = pick_any_map(true), flags = 0;
	char *old, *naddr = NULL, *p;
	size_t olen, nlen;
	bool grow = false;

	if (mi < 0)
		return op_mmap();
	call_init(&c, OP_MREMAP);
	old = M[mi].addr;
	olen = M[mi].len;
	nlen = olen;
	switch (rn(10)) {
	case 0:
	case 1:
		c.var = "shrink";
		if (olen > PG)
			nlen = PG * (1 + rn(olen / PG - 1));
		break;
	case 2:
		c.var = "grow";
		nlen = olen + PG * (1 + rn(4));
		grow = true;
		break;
	case 3:
		c.var = "grow-maymove";
		nlen = olen + PG * (1 + rn(4));
		flags = MREMAP_MAYMOVE;
		grow = true;
		break;
	case 4:
	case 5:
	case 6:
		c.var = "move";
		naddr = free_landing();
		if (!naddr)
			break;
		flags = MREMAP_MAYMOVE | MREMAP_FIXED;
		if (olen > PG && chance(50)) {
			/* A piece of it, maybe shrunk on the way. */
			size_t k = PG * rn(olen / PG);

			old += k;
			olen -= k;
			olen = PG * (1 + rn(olen / PG));
			nlen = chance(50) ? olen : PG;
		}
		break;
	case 7:
		c.var = "dontunmap";
		flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
		e.must |= EB(EINVAL);
		break;
	case 8:
		c.var = "duplicate";
		olen = 0;
		nlen = PG;
		flags = MREMAP_MAYMOVE;
		grow = true;
		break;
	default:
		switch (rn(4)) {
		case 0:
			old += 1;
			break;
		case 1:
			nlen = 0;
			break;
		case 2:
			flags = 0x80;
			break;
		default:
			flags = MREMAP_FIXED;
			naddr = free_landing();
			break;
		}
		c.var = "bad";
		e.must |= EB(EINVAL);
		break;
	}
	/* README: mappings cannot grow (VM_DONTEXPAND). */
	if (grow)
		e.must |= E2(EFAULT, ENOMEM);
	if (!M[mi].pristine)
		e.any = true;
	c.ptr = (uintptr_t)old;
	c.a[0] = olen;
	c.a[1] = nlen;
	c.a[2] = flags;
	c.a[3] = (uintptr_t)naddr;
	p = mremap(old, olen, nlen, flags, naddr);
	call_done(&c, p == MAP_FAILED ? -1 : (long)(uintptr_t)p);
	verdict(&c, &e);
	if (p == MAP_FAILED) {
		if (naddr && (flags & MREMAP_FIXED))
			map_unknown(naddr, naddr + nlen);
		return;
	}
	if ((flags & MREMAP_FIXED) && p != naddr)
		report(&c, &e, "mremap(MREMAP_FIXED) moved to %p", p);
	if (!olen) {		/* a duplicate: reported; drop it */
		munmap(p, nlen);
		return;
	}
	/* The model: [old, old+olen) went to [p, p+nlen). */
	mi = map_carve(mi, old, old + olen);
	if (mi < 0) {
		map_unknown(old, old + olen);
		map_unknown(p, p + nlen);
		return;
	}
	if (nlen > olen) {
		M[mi].pristine = false;
		return;
	}
	M[mi].addr = p;
	M[mi].len = nlen;
}

static void op_madvise(void)
{
	static const int adv[] = {
		MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
		MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTFORK,
		MADV_DOFORK, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE,
		MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK,
		MADV_KEEPONFORK, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ,
		MADV_POPULATE_WRITE, MADV_DONTNEED_LOCKED, MADV_COLLAPSE, 77,
		12345, -1,
	};
	struct expect e = { 0 };
	struct call c;
	int mi = pick_any_map(true), a, k;
	struct map *m;
	char *s;
	size_t len;

	if (mi < 0)
		return op_mmap();
	m = &M[mi];
	call_init(&c, OP_MADVISE);
	a = adv[rn(sizeof(adv) / sizeof(adv[0]))];
	s = m->addr;
	len = m->len;
	if (chance(40) && len > PG) {
		s += PG * rn(len / PG);
		len = PG * (1 + rn((m->addr + m->len - s) / PG));
	}
	if ((a == MADV_POPULATE_READ || a == MADV_POPULATE_WRITE ||
	     a == MADV_WILLNEED) && len > POP_CAP)
		len = POP_CAP;
	if (chance(5)) {
		s += 1 + rn(PG - 1);
		e.must |= EB(EINVAL);
		c.var = "unaligned";
	} else if (chance(4) && (s = free_landing())) {
		len = PG;
		e.must |= EB(ENOMEM);
		c.var = "unmapped";
	} else if (!s) {
		s = m->addr;
	}
	c.ptr = (uintptr_t)s;
	c.a[0] = len;
	c.a[1] = a;
	switch (a) {
	case 77:
	case 12345:
	case -1:
	case MADV_FREE:		/* anonymous memory only */
	case MADV_WIPEONFORK:
		e.must |= EB(EINVAL);
		break;
	case MADV_NORMAL:
	case MADV_RANDOM:
	case MADV_SEQUENTIAL:
	case MADV_WILLNEED:
	case MADV_DONTNEED:
	case MADV_DONTFORK:
	case MADV_DOFORK:
	case MADV_DONTDUMP:
	case MADV_KEEPONFORK:
	case MADV_COLD:
	case MADV_PAGEOUT:
		break;		/* must work on any mapping */
	case MADV_POPULATE_READ:
		if (!(m->prot & PROT_READ))
			e.any = true;
		break;
	case MADV_POPULATE_WRITE:
		if ((m->prot & (PROT_READ | PROT_WRITE)) !=
		    (PROT_READ | PROT_WRITE))
			e.any = true;
		break;
	default:
		e.any = true;
		break;
	}
	if (!m->pristine && !e.must)
		e.any = true;
	e.maybe |= E2(ENOMEM, EAGAIN);	/* splitting a VMA allocates */
	call_done(&c, madvise(s, len, a));
	verdict(&c, &e);
	if (c.ret < 0 || (a != MADV_DONTFORK && a != MADV_DOFORK))
		return;
	for (mi = 0; mi < NMAP; mi++) {
		if (!M[mi].used)
			continue;
		k = map_carve(mi, s, s + len);
		if (k == -2)
			M[mi].dontfork = true;	/* child may lack it */
		else if (k >= 0)
			M[k].dontfork = a == MADV_DONTFORK;
	}
}

static void op_mprotect(void)
{
	static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ,
				     PROT_READ | PROT_WRITE,
				     PROT_READ | PROT_WRITE, PROT_WRITE,
				     PROT_READ | PROT_EXEC, PROT_EXEC, 0x40 };
	struct expect e = { 0 };
	struct call c;
	int mi = pick_any_map(true), prot = prots[rn(9)], k;
	struct map *m;
	char *s;
	size_t len;

	if (mi < 0)
		return op_mmap();
	m = &M[mi];
	call_init(&c, OP_MPROTECT);
	s = m->addr;
	len = m->len;
	if (chance(40) && len > PG) {
		s += PG * rn(len / PG);
		len = PG * (1 + rn((m->addr + m->len - s) / PG));
	}
	if (chance(4)) {
		s += 1 + rn(PG - 1);
		e.must |= EB(EINVAL);
	}
	if (prot == 0x40)
		e.must |= EB(EINVAL);
	if ((prot & PROT_WRITE) && !m->maywrite)
		e.must |= EB(EACCES);	/* snapshot or read-only map */
	if (prot & PROT_EXEC)
		e.maybe |= EB(EACCES);
	e.maybe |= EB(ENOMEM);	/* splitting a VMA allocates */
	if (!m->pristine)
		e.any = true;
	c.ptr = (uintptr_t)s;
	c.a[0] = len;
	c.a[1] = prot;
	call_done(&c, mprotect(s, len, prot));
	verdict(&c, &e);
	if (c.ret < 0)
		return;
	k = map_carve(mi, s, s + len);
	if (k >= 0)
		M[k].prot = prot;
}

/* A load or store through a mapping, surviving the fault it may raise. */
static void op_touch(void)
{
	static volatile unsigned char sink __attribute__((unused));
	int mi = pick_any_map(false), sig, want;
	bool store;
	struct map *m;
	struct call c;
	volatile unsigned char *p;

	if (mi < 0)
		return op_mmap();
	m = &M[mi];
	call_init(&c, OP_TOUCH);
	store = m->pristine && chance(40);
	p = (unsigned char *)m->addr + rn(m->len);
	c.var = store ? "store" : "load";
	c.ptr = (uintptr_t)p;
	c.a[0] = m->prot;
	c.a[1] = m->kind;
	c.a[2] = m->pristine;
	sig = sigsetjmp(touch_jb, 0);
	if (!sig) {
		touch_armed = 1;
		if (store)
			*p = 0x80 | rnd();	/* never forms a valid name */
		else
			sink = *p;
		touch_armed = 0;
	}
	want = 0;
	if (store)
		want = m->prot & PROT_WRITE ? 0 : SIGSEGV;
	else if (m->prot == PROT_NONE)
		want = SIGSEGV;
	else if (m->prot == PROT_EXEC)
		want = -1;	/* execute-only with protection keys */
	if (!m->pristine)
		want = -1;
	errno = sig;	/* shown as the result */
	call_done(&c, sig ? -1 : 0);
	if (sig == SIGBUS || (want >= 0 && sig != want))
		report(&c, NULL, "%s at %p (%s map, prot %#x, offset %#lx of %#zx): signal %d, want %d",
		       c.var, (void *)p,
		       m->kind == MK_LIVE ? "live" : "snapshot",
		       m->prot, (long)((char *)p - m->addr), m->len, sig, want);
}

/* ---------------------------------------------------------------- */
/* Driving it.                                                        */

static int pick_op(void)
{
	static unsigned int total;
	unsigned int r;
	int op, i;

	if (!total)
		for (op = 0; op < NOPS; op++)
			total += op_weight[op];
	if (pick_fd(FD_HANDLE) < 0 && chance(80))
		return OP_OPEN;
	/* Splits need free map slots: make room before the table fills. */
	if (nmaps() >= NMAP - 2)
		return OP_MUNMAP;
	r = rn(total);
	for (op = 0; op < NOPS && r >= op_weight[op]; op++)
		r -= op_weight[op];
	/* Keep the tables from filling up; keep exact regions small. */
	if ((op == OP_OPEN || op == OP_DUP || op == OP_SNAP_OPEN) &&
	    nfds() >= NFD - 1 && chance(80))
		return OP_CLOSE;
	if (op == OP_SNAP_CREATE)
		for (i = 0; i < NREG; i++)
			if (R[i].used && R[i].exact && R[i].nids > NIDS - 8 &&
			    chance(70))
				return OP_SNAP_DELETE;
	return op;
}

static void run_one(void)
{
	clean = chance(40);
	switch (pick_op()) {
	case OP_OPEN: op_open(); break;
	case OP_CLOSE: op_close(); break;
	case OP_DUP: op_dup(); break;
	case OP_API: op_api(); break;
	case OP_CREATE: op_create(); break;
	case OP_ATTACH: op_attach(); break;
	case OP_DESTROY: op_destroy(); break;
	case OP_INFO: op_info(); break;
	case OP_SNAP_CREATE: op_snap_create(); break;
	case OP_SNAP_LIST: op_snap_list(); break;
	case OP_SNAP_DELETE: op_snap_delete(); break;
	case OP_SNAP_OPEN: op_snap_open(); break;
	case OP_RESTORE: op_restore(); break;
	case OP_DIFF: op_diff(); break;
	case OP_CLONE: op_clone(); break;
	case OP_BADCMD: op_badcmd(); break;
	case OP_READ: op_rw(false); break;
	case OP_WRITE: op_rw(true); break;
	case OP_LSEEK: op_lseek(); break;
	case OP_MMAP: op_mmap(); break;
	case OP_MUNMAP: op_munmap(); break;
	case OP_MREMAP: op_mremap(); break;
	case OP_MADVISE: op_madvise(); break;
	case OP_MPROTECT: op_mprotect(); break;
	default: op_touch(); break;
	}
}

/*
 * Replay aid: after every call, hash again every snapshot whose contents
 * the model knows, through a fresh snapshot fd (raw syscalls: the model,
 * the random numbers and the fd numbers the fuzzer sees stay the same),
 * so the first call after which one differs is named.
 */
/*
 * Check snapshot @i of region record @ri, read through @fd, against its
 * known hash; on a change print the bytes that differ from the last copy.
 */
static void paranoid_snapshot(int ri, int i, int fd)
{
	static struct { int ri; uint64_t id; char *data; } keep[64];
	static uint64_t buf[HASH_CAP / 8];
	struct cowsnap_snap_open so = { .id = R[ri].ids[i] };
	struct region *r = &R[ri];
	uint64_t h = 0xcbf29ce484222325ULL, k;
	const char *now = (const char *)buf;
	int sfd, j;

	sfd = ioctl(fd, COWSNAP_IOC_SNAP_OPEN, &so);
	if (sfd < 0)
		return;
	if (pread(sfd, buf, r->size, 0) != (ssize_t)r->size) {
		close(sfd);
		return;
	}
	close(sfd);
	for (k = 0; k < r->size / 8; k++)
		h = (h ^ buf[k]) * 0x100000001b3ULL;
	h |= 1;
	for (j = 0; j < 64; j++)
		if (keep[j].data && keep[j].ri == ri && keep[j].id == so.id)
			break;
	if (h != r->hash[i]) {
		report(NULL, NULL, "paranoid: after call #%llu snapshot %llu of rec %d hashes %#llx, was %#llx",
		       (unsigned long long)S.seq, (unsigned long long)so.id,
		       ri, (unsigned long long)h,
		       (unsigned long long)r->hash[i]);
		r->hash[i] = h;
		for (k = 0; j < 64 && k < r->size; k++)
			if (keep[j].data[k] != now[k])
				printf("#   byte %#llx: %#x -> %#x\n",
				       (unsigned long long)k,
				       keep[j].data[k] & 0xff, now[k] & 0xff);
	}
	if (j == 64) {
		for (j = 0; j < 64 && keep[j].data; j++)
			;
		j %= 64;	/* full: reuse the first (not rn()) */
	}
	free(keep[j].data);
	keep[j].ri = ri;
	keep[j].id = so.id;
	keep[j].data = malloc(r->size);
	if (keep[j].data)
		memcpy(keep[j].data, buf, r->size);
}

static void paranoid_check(void)
{
	int ri, fi, i;

	for (ri = 0; ri < NREG; ri++) {
		struct region *r = &R[ri];

		if (!r->used || !r->size || r->size > HASH_CAP)
			continue;
		for (fi = 0; fi < NFD; fi++)
			if (F[fi].fd >= 0 && F[fi].kind == FD_HANDLE &&
			    O[F[fi].ofd].state == OS_ATT &&
			    O[F[fi].ofd].reg == ri)
				break;
		for (i = 0; fi < NFD && i < r->nids; i++)
			if (r->hash[i])
				paranoid_snapshot(ri, i, F[fi].fd);
	}
}

/*
 * Replay aid: every pristine readable live map of an exact region must
 * show what pread() of the live view shows (a stale PTE would not), and
 * say when /proc/cowsnap counts a pinned copy.
 */
static void paranoid_maps(void)
{
	static char a[HASH_CAP], b[HASH_CAP];
	static long long pinned;
	long long v = proc_counter("pinned_copies");
	int mi, fi;

	if (v != pinned)
		printf("# paranoid: pinned_copies %lld after call #%llu\n", v,
		       (unsigned long long)S.seq);
	pinned = v;
	for (mi = 0; mi < NMAP; mi++) {
		struct map *m = &M[mi];

		if (!m->used || !m->pristine || m->kind != MK_LIVE ||
		    !(m->prot & PROT_READ) || m->reg < 0 ||
		    !R[m->reg].exact || m->len > HASH_CAP)
			continue;
		for (fi = 0; fi < NFD; fi++)
			if (F[fi].fd >= 0 && F[fi].kind == FD_HANDLE &&
			    O[F[fi].ofd].state == OS_ATT &&
			    O[F[fi].ofd].reg == m->reg &&
			    O[F[fi].ofd].acc != O_WRONLY)
				break;
		if (fi == NFD ||
		    pread(F[fi].fd, b, m->len, m->off) != (ssize_t)m->len ||
		    guarded_copy(a, m->addr, m->len))
			continue;
		if (memcmp(a, b, m->len))
			report(NULL, NULL, "paranoid: after call #%llu map %p (offset %#llx, %#zx bytes) of rec %d differs from the live view",
			       (unsigned long long)S.seq, m->addr,
			       (unsigned long long)m->off, m->len, m->reg);
	}
}

static void steps(uint64_t n)
{
	uint64_t stop = S.calls + n;

	while (S.calls < stop) {
		run_one();
		if (S.paranoid) {
			paranoid_check();
			paranoid_maps();
		}
	}
}

/* This worker's counters into the shared ones. */
static void stats_merge(void)
{
	int i;

	__atomic_fetch_add(&st->calls, S.calls, __ATOMIC_RELAXED);
	for (i = 0; i < NOPS; i++) {
		__atomic_fetch_add(&st->op_calls[i], S.op_calls[i],
				   __ATOMIC_RELAXED);
		__atomic_fetch_add(&st->op_ok[i], S.op_ok[i], __ATOMIC_RELAXED);
	}
	for (i = 0; i < 64; i++)
		__atomic_fetch_add(&st->errs[i], S.errs[i], __ATOMIC_RELAXED);
	S.calls = 0;
	memset(S.op_calls, 0, sizeof(S.op_calls));
	memset(S.op_ok, 0, sizeof(S.op_ok));
	memset(S.errs, 0, sizeof(S.errs));
}

static void model_reset(void)
{
	int i;

	memset(R, 0, sizeof(R));
	memset(O, 0, sizeof(O));
	memset(M, 0, sizeof(M));
	memset(ring, 0, sizeof(ring));
	for (i = 0; i < NFD; i++)
		F[i].fd = -1;
	nforeign = 0;
	set_slot_names(0);
}

/* Another process shares everything we hold now. */
static void share_everything(void)
{
	int i;

	for (i = 0; i < NREG; i++)
		R[i].exact = false;
	for (i = 0; i < NOFD; i++) {
		O[i].shared = true;
		if (O[i].state == OS_UNATT)
			O[i].state = OS_UNKNOWN;
	}
	for (i = 0; i < NFD; i++)
		F[i].shared = true;
}

/* A forked worker: its own names, uid and fd limit, maybe. */
static void child_init(unsigned int w)
{
	struct rlimit rl;
	int i, maxfd = 0;

	S.worker = w;
	S.rng = mix(S.seed ^ ((uint64_t)S.epoch << 20) ^ w);
	S.seq = 0;
	S.calls = 0;	/* the parent counts its own */
	memset(S.op_calls, 0, sizeof(S.op_calls));
	memset(S.op_ok, 0, sizeof(S.op_ok));
	memset(S.errs, 0, sizeof(S.errs));
	memset(ring, 0, sizeof(ring));
	share_everything();
	for (i = 0; i < NREG; i++)
		R[i].mine = false;	/* the parent's names */
	memcpy(foreign, slot_name, sizeof(foreign));
	nforeign = NSLOT;
	set_slot_names(w);
	S.ns_private = true;
	for (i = 0; i < NMAP; i++)
		if (M[i].used && M[i].dontfork)
			M[i].used = false;
	for (i = 0; i < NFD; i++)
		if (F[i].fd > maxfd)
			maxfd = F[i].fd;
	if (chance(25) && !setgroups(0, NULL) &&
	    !setresgid(65534, 65534, 65534) &&
	    !setresuid(65534, 65534, 65534))
		S.nobody = true;
	if (chance(20)) {
		/* Few free fds: SNAP_OPEN, open and dup meet EMFILE. */
		rl.rlim_cur = maxfd + 3;
		rl.rlim_max = 1024;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	alarm(TH_TIMEOUT);
}

struct procinfo {
	long long regions, snapshots, pages, shared;
	int nnames;
	char names[64][64];
	char text[2048];
};

static int proc_read(struct procinfo *pi)
{
	FILE *f = fopen("/proc/cowsnap", "r");
	char line[512], key[64], name[128];
	long long v;
	size_t t = 0;

	memset(pi, 0, sizeof(*pi));
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		size_t l = strlen(line);

		if (t + l < sizeof(pi->text) - 1) {
			memcpy(pi->text + t, line, l);
			t += l;
		}
		if (!strncmp(line, "region ", 7) &&
		    sscanf(line + 7, "%127s", name) == 1) {
			if (!strncmp(name, "fz-", 3) && pi->nnames < 64)
				snprintf(pi->names[pi->nnames++], 64, "%.63s",
					 name);
			continue;
		}
		if (sscanf(line, "%63s %lld", key, &v) != 2)
			continue;
		if (!strcmp(key, "regions"))
			pi->regions = v;
		else if (!strcmp(key, "snapshots"))
			pi->snapshots = v;
		else if (!strcmp(key, "pages_allocated"))
			pi->pages = v;
		else if (!strcmp(key, "pages_shared"))
			pi->shared = v;
	}
	fclose(f);
	return 0;
}

/*
 * Unmap and close the cowsnap mappings and fds the model lost track of
 * (a split it had no slot for, say), so that what /proc/cowsnap shows
 * after teardown is the module's doing.  Returns how many.
 */
static int sweep(void)
{
	static unsigned long v[256][2];
	char line[512], path[64], link[256];
	int n = 0, nv = 0, i;
	struct dirent *de;
	ssize_t l;
	FILE *f;
	DIR *d;

	f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "cowsnap") && nv < 256 &&
		    sscanf(line, "%lx-%lx", &v[nv][0], &v[nv][1]) == 2)
			nv++;
	if (f)
		fclose(f);
	for (i = 0; i < nv; i++)
		n += !munmap((void *)v[i][0], v[i][1] - v[i][0]);
	d = opendir("/proc/self/fd");
	while (d && (de = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%.32s", de->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		if (strstr(link, "cowsnap"))
			n += !close(atoi(de->d_name));
	}
	if (d)
		closedir(d);
	return n;
}

/*
 * Unmap, close and destroy everything, then /proc/cowsnap must show no
 * region, snapshot or page left.
 */
static void teardown(const char *when)
{
	static bool leaked;
	struct procinfo pi;
	struct call c;
	struct expect e = { 0 };
	int i, fd;

	for (i = 0; i < NMAP; i++) {
		if (!M[i].used)
			continue;
		call_init(&c, OP_MUNMAP);
		c.var = "teardown";
		c.ptr = (uintptr_t)M[i].addr;
		c.a[0] = M[i].len;
		call_done(&c, munmap(M[i].addr, M[i].len));
		verdict(&c, &e);
		M[i].used = false;
	}
	for (i = 0; i < NFD; i++)
		if (F[i].fd >= 0) {
			close_checked(F[i].fd);
			fd_forget(i);
		}
	st->swept += sweep();
	if (proc_read(&pi)) {
		report(NULL, NULL, "cannot read /proc/cowsnap");
		return;
	}
	fd = cs_open();
	for (i = 0; i < pi.nnames; i++)
		if (cs_destroy(fd, pi.names[i]))
			report(NULL, NULL, "teardown: DESTROY %s: %s",
			       pi.names[i], strerror(errno));
	close(fd);
	if (proc_read(&pi))
		return;
	if (leaked || (!pi.regions && !pi.snapshots && !pi.pages && !pi.shared))
		return;
	leaked = true;	/* once: later epochs would repeat it */
	report(NULL, NULL, "%s: /proc/cowsnap shows regions %lld snapshots %lld pages_allocated %lld pages_shared %lld after everything was closed and destroyed:\n%s",
	       when, pi.regions, pi.snapshots, pi.pages, pi.shared, pi.text);
}

static void epoch_run(unsigned int epoch, uint64_t calls)
{
	unsigned int nw = 1, w, r;
	uint64_t pre, share;
	pid_t pids[4];
	int status;

	S.epoch = epoch;
	S.worker = 0;
	S.seq = 0;
	S.ns_private = true;
	S.rng = mix(S.seed ^ ((uint64_t)epoch << 20));
	model_reset();
	r = rn(100);
	if (r >= 50)
		nw = r < 80 ? 2 : 3;
	pre = nw > 1 ? calls / 4 : calls;
	steps(pre);
	if (nw > 1) {
		share = (calls - pre) / nw;
		fflush(NULL);
		st->forked++;
		for (w = 1; w < nw; w++) {
			pids[w] = fork();
			if (pids[w] < 0) {
				report(NULL, NULL, "fork: %s", strerror(errno));
				pids[w] = 0;
				continue;
			}
			if (!pids[w]) {
				child_init(w);
				steps(share);
				stats_merge();
				fflush(NULL);
				_exit(0);
			}
		}
		share_everything();
		S.ns_private = false;
		steps(calls - pre - share * (nw - 1));
		for (w = 1; w < nw; w++) {
			if (!pids[w])
				continue;
			if (waitpid(pids[w], &status, 0) != pids[w] ||
			    !WIFEXITED(status) || WEXITSTATUS(status))
				report(NULL, NULL, "worker %u ended with status %#x (signal %d)",
				       w, status,
				       WIFSIGNALED(status) ?
				       WTERMSIG(status) : 0);
		}
	}
	stats_merge();
	teardown("epoch end");
	st->epochs++;
}

static void memory_setup(void)
{
	struct sigaction sa = { 0 };
	char *p;
	int mfd;

	p = mmap((void *)BASE_ADDR, ARENA_SIZE + PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_TRUE(p == (void *)BASE_ADDR);
	arena = p;
	hole = arena + ARENA_SIZE;
	ASSERT_EQ(munmap(hole, PG), 0);	/* an unmapped page */
	mfd = memfd_create("fz-ro", MFD_CLOEXEC);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(ftruncate(mfd, RO_SIZE), 0);
	ro = mmap((void *)(BASE_ADDR + 64 * PG), RO_SIZE, PROT_READ,
		  MAP_SHARED | MAP_FIXED_NOREPLACE, mfd, 0);
	ASSERT_TRUE(ro == (void *)(BASE_ADDR + 64 * PG));
	ro_rw = mmap(NULL, RO_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_TRUE(ro_rw != MAP_FAILED);
	close(mfd);
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(st != MAP_FAILED);
	memset(st, 0, sizeof(*st));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0);
}

static unsigned long long read_param(const char *name, unsigned long long def)
{
	char path[128];
	unsigned long long v;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/cowsnap/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return def;
	if (fscanf(f, "%llu", &v) != 1)
		v = def;
	fclose(f);
	return v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_coverage(void)
{
	char b[1024];
	int i, k = 0, n = 0;

	for (i = 0; i < NOPS; i++) {
		k += snprintf(b + k, sizeof(b) - k, " %s %llu/%llu",
			      op_name[i], (unsigned long long)st->op_calls[i],
			      (unsigned long long)st->op_ok[i]);
		if (++n == 9 || i == NOPS - 1) {
			printf("#   calls/ok:%s\n", b);
			k = n = 0;
		}
	}
	k = 0;
	for (i = 1; i < 64; i++)
		if (st->errs[i])
			k += snprintf(b + k, sizeof(b) - k, " %s %llu",
				      errname(i),
				      (unsigned long long)st->errs[i]);
	printf("#   errnos:%s\n", b);
}

static void fuzz_run(const char *test, uint64_t seed, uint64_t calls,
		     unsigned int epoch, bool trace, bool paranoid)
{
	struct stat sb;
	struct procinfo pi;
	uint64_t done = 0, n;
	int i;
	double t0, dt;
	int fd;

	fd = cs_open();
	if (fd < 0)
		SKIP("cannot open %s: %s", COWSNAP_DEV, strerror(errno));
	close(fd);
	ASSERT_EQ(proc_read(&pi), 0);
	if (pi.regions || pi.pages)
		SKIP("cowsnap is in use (%lld regions): the end state could not be checked",
		     pi.regions);
	tables_init();
	memory_setup();
	max_region_size = read_param("max_region_size", TB16);
	max_snapshots = read_param("max_snapshots", 4096);
	if (!stat(COWSNAP_DEV, &sb))
		dev_mode = sb.st_mode & 0777;
	memset(&S, 0, sizeof(S));
	S.test = test;
	S.seed = seed;
	S.trace = trace;
	S.paranoid = paranoid;
	t0 = now();
	while (done < calls) {
		n = calls - done < EPOCH_CALLS ? calls - done : EPOCH_CALLS;
		epoch_run(epoch++, n);
		done += n;
	}
	dt = now() - t0;
	teardown("end of test");
	printf("# %s: seed %#llx: %llu calls in %.1f s, %.0f calls/s, %llu epochs (%llu with forked workers), %llu failures, %llu untracked maps/fds swept\n",
	       test, (unsigned long long)seed,
	       (unsigned long long)st->calls, dt, st->calls / dt,
	       (unsigned long long)st->epochs,
	       (unsigned long long)st->forked,
	       (unsigned long long)st->failures,
	       (unsigned long long)st->swept);
	print_coverage();
	for (i = 0; i < NKINDS && st->kinds[i].fmt; i++)
		printf("#   failures x%llu: %s\n",
		       (unsigned long long)st->kinds[i].n, st->kinds[i].text);
	ASSERT_EQ(proc_read(&pi), 0);
	ASSERT_EQ(pi.regions, 0);
	ASSERT_EQ(pi.snapshots, 0);
	ASSERT_EQ(pi.pages, 0);
	ASSERT_GE(st->calls, calls);
	if (st->failures)
		FAIL("%llu failures (seed %#llx); first: %s",
		     (unsigned long long)st->failures,
		     (unsigned long long)seed, st->first);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

TEST(fuzz_fixed_seed)
{
	/* 100000 on every kernel: about 60 s on the debug kernel. */
	fuzz_run("fuzz_fixed_seed", FIXED_SEED,
		 env_u64("COWSNAP_FUZZ_CALLS", FIXED_CALLS), 0, false, false);
}

/*
 * COWSNAP_SEED=SEED replays a run; SEED:EPOCH runs COWSNAP_FUZZ_CALLS
 * calls (default one epoch) from that epoch on, SEED:EPOCH:trace prints
 * every call, SEED:EPOCH:paranoid (or :trace:paranoid) also re-reads every
 * snapshot of known contents and compares every live mapping with the live
 * view after every call, naming the call that changed one.  E.g.
 *   make check KERNELS=6.1 FILTER=fuzz_random LINT=0 \
 *	COWSNAP_SEED=0xc05a9f00d1ce:20:trace:paranoid
 * replays epoch 20 of fuzz_fixed_seed.
 */
TEST(fuzz_random_seed)
{
	const char *env = getenv("COWSNAP_SEED");
	unsigned int epoch = 0;
	struct timespec ts;
	uint64_t seed, calls = RANDOM_CALLS;
	char *end = NULL;

	clock_gettime(CLOCK_REALTIME, &ts);
	seed = mix(ts.tv_sec ^ ((uint64_t)ts.tv_nsec << 20) ^ getpid());
	if (env && *env) {
		seed = strtoull(env, &end, 0);
		if (*end == ':') {
			epoch = strtoul(end + 1, &end, 0);
			calls = env_u64("COWSNAP_FUZZ_CALLS", EPOCH_CALLS);
		}
	}
	printf("# fuzz_random_seed: seed %#llx (replay: COWSNAP_SEED=%#llx)\n",
	       (unsigned long long)seed, (unsigned long long)seed);
	fuzz_run("fuzz_random_seed", seed, calls, epoch,
		 end && strstr(end, ":trace"), end && strstr(end, ":paranoid"));
}
