// SPDX-License-Identifier: GPL-2.0
/*
 * An SQLite database that lives in a cowsnap region.
 *
 * The region (64 MiB, sized for growth) is mapped MAP_SHARED read/write and
 * handed to SQLite with sqlite3_deserialize(), so SQLite's memdb VFS reads
 * and writes the database pages in place, in the region.  A writer thread
 * runs small OLTP transactions (a transfer between two accounts, a history
 * row, now and then a new account), and the program shows three things:
 *
 *  1. Save: a point-in-time copy of the database to a file while the
 *     writer goes on.  The writer takes a cowsnap snapshot between two
 *     transactions (its pause is the ioctl), and a second thread writes the
 *     snapshot's bytes to a file.  Compared with SQLite's online backup API
 *     (small steps, interleaved with the writer) and VACUUM INTO on the
 *     same data: writer throughput and pauses, save time, extra memory.
 *     Every saved file must pass PRAGMA integrity_check and hold exactly
 *     the committed state of its moment.
 *  2. MVCC reader: another process opens a snapshot read-only and runs
 *     long aggregate queries on the old state while the writer goes on.
 *  3. Rollback: csnap_restore() back to a snapshot after a bad update; the
 *     database is again exactly the old one.
 *
 * "sqlite_demo --check" is a short correctness run (exit status 1 and a
 * "FAIL ..." line on any mismatch); without arguments the measured run
 * prints Markdown tables.  Under QEMU TCG absolute numbers mean little:
 * compare the rows of one run with each other.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sqlite3.h>
#include "libcowsnap.h"

/*
 * SQLite pages of 4 KiB, the size of a region page: a transaction that
 * changes k database pages after a snapshot copies exactly k region pages,
 * never a neighbour that merely shares a page with one.
 */
#define DB_PAGE		4096
#define REGION_SIZE	(64ULL << 20)
#define MEMO_LEN	40

/* The committed state, as the writer knows it and as SQL must find it. */
struct state {
	int64_t accounts;	/* count(*) FROM accounts */
	int64_t balance;	/* sum(balance) */
	int64_t weighted;	/* sum(id * balance): catches swapped rows */
	int64_t history;	/* count(*) FROM history */
	int64_t history_min;	/* min(id) FROM history */
	int64_t history_max;	/* max(id) FROM history */
	int64_t amount;		/* sum(amount) FROM history */
};

static const char *const state_sql =
	"SELECT (SELECT count(*) FROM accounts),"
	" (SELECT coalesce(sum(balance), 0) FROM accounts),"
	" (SELECT coalesce(sum(id * balance), 0) FROM accounts),"
	" (SELECT count(*) FROM history),"
	" (SELECT coalesce(min(id), 0) FROM history),"
	" (SELECT coalesce(max(id), 0) FROM history),"
	" (SELECT coalesce(sum(amount), 0) FROM history)";

struct config {
	int check;		/* --check: short, correctness only */
	int accounts;		/* initial accounts */
	int history;		/* initial history rows */
	double alone_s;		/* writer alone, for the baselines */
	double reader_s;	/* how long the MVCC reader runs at least */
	int reader_rounds;	/* ... and at least this many rounds */
	int min_window_tx;	/* --check: tx between snapshot and its copy */
	int rollback_tx;	/* transactions between snapshot and accident */
};

struct writer {
	const struct config *cfg;
	int fd;			/* handle attached to the region */
	unsigned char *mem;	/* the region, mapped read/write */
	char name[COWSNAP_NAME_MAX];
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *update, *add_history, *add_account;
	sqlite3_stmt *drop_history, *page_count;
	struct state st;	/* committed state; under the turn lock */
	uint64_t rng;
	uint64_t ntx;

	/*
	 * A fair (ticket) lock around each transaction.  A backup step or a
	 * VACUUM INTO must run between two transactions of the writer, on
	 * its connection, and must not starve: a plain mutex re-taken in a
	 * tight loop would let the writer win every time.
	 */
	pthread_mutex_t m;
	pthread_cond_t cv;
	unsigned long next, serving;

	/* A snapshot request from the save thread, served between two tx. */
	int snap_req, snap_ready;
	uint64_t snap_id, snap_ntx;
	int64_t snap_bytes;	/* database size at the snapshot */
	struct state snap_st;
	double snap_pause;	/* the ioctl, seconds */

	int save_done;		/* the save thread finished */

	/* Gaps between consecutive commits, as the writer sees them. */
	double *gaps;
	size_t ngaps, capgaps;
	double last;
};

/* What a save method measured. */
struct result {
	const char *method;
	double save_s;		/* from the request to the file closed */
	double window_s;	/* how long the writer ran beside it */
	uint64_t tx;		/* writer transactions in the window */
	double p99, worst;	/* commit gaps in the window, seconds */
	double pause;		/* cowsnap: the snapshot ioctl */
	int64_t heap;		/* SQLite heap high water over the start */
	int64_t cow_pages;	/* cowsnap: pages copied for the snapshot */
	int64_t file_bytes;
	struct state expect;	/* the committed state the file must hold */
	char path[64];
};

static char region_name[COWSNAP_NAME_MAX];
static char paths[4][64];
static pid_t main_pid;

/* Remove what the run made, also when it fails. */
static void cleanup(void)
{
	int fd, i;

	if (getpid() != main_pid)
		return;
	for (i = 0; i < 4; i++)
		if (paths[i][0])
			unlink(paths[i]);
	if (!region_name[0])
		return;
	fd = csnap_open(O_RDWR);
	if (fd >= 0) {
		csnap_region_destroy(fd, region_name);
		close(fd);
	}
	region_name[0] = 0;
}

/* Every check fails loudly: one FAIL line, exit status 1. */
static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stdout, "FAIL sqlite_demo: ");
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd(struct writer *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 0x2545f4914f6cdd1dULL;
}

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die("%s: %s", sql, err ? err : sqlite3_errmsg(db));
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s,
			       NULL) != SQLITE_OK)
		die("prepare %s: %s", sql, sqlite3_errmsg(db));
	return s;
}

/* Run a statement that returns no row, and reset it for the next use. */
static void step_done(sqlite3 *db, sqlite3_stmt *s)
{
	if (sqlite3_step(s) != SQLITE_DONE)
		die("%s: %s", sqlite3_sql(s), sqlite3_errmsg(db));
	sqlite3_reset(s);
}

/* A query returning one row of integers: its first @n columns. */
static void query_ints(sqlite3 *db, const char *sql, int64_t *out, int n)
{
	sqlite3_stmt *s;
	int i;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		die("prepare %s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(s) != SQLITE_ROW)
		die("%s: %s", sql, sqlite3_errmsg(db));
	for (i = 0; i < n; i++)
		out[i] = sqlite3_column_int64(s, i);
	sqlite3_finalize(s);
}

static void db_state(sqlite3 *db, struct state *st)
{
	int64_t v[7];

	query_ints(db, state_sql, v, 7);
	st->accounts = v[0];
	st->balance = v[1];
	st->weighted = v[2];
	st->history = v[3];
	st->history_min = v[4];
	st->history_max = v[5];
	st->amount = v[6];
}

static int state_eq(const struct state *a, const struct state *b)
{
	return a->accounts == b->accounts && a->balance == b->balance &&
	       a->weighted == b->weighted && a->history == b->history &&
	       a->history_min == b->history_min &&
	       a->history_max == b->history_max && a->amount == b->amount;
}

static const char *state_str(const struct state *s, char *buf, size_t len)
{
	snprintf(buf, len,
		 "accounts=%" PRId64 " sum(balance)=%" PRId64
		 " sum(id*balance)=%" PRId64 " history=%" PRId64
		 " ids %" PRId64 "..%" PRId64 " sum(amount)=%" PRId64,
		 s->accounts, s->balance, s->weighted, s->history,
		 s->history_min, s->history_max, s->amount);
	return buf;
}

static void expect_state(sqlite3 *db, const struct state *want,
			 const char *what)
{
	char a[256], b[256];
	struct state got;

	db_state(db, &got);
	if (!state_eq(&got, want))
		die("%s holds %s, expected %s", what,
		    state_str(&got, a, sizeof(a)), state_str(want, b, sizeof(b)));
}

/* PRAGMA integrity_check must answer exactly one row, "ok". */
static void expect_intact(sqlite3 *db, const char *what)
{
	const unsigned char *t;
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s,
			       NULL) != SQLITE_OK)
		die("%s: integrity_check: %s", what, sqlite3_errmsg(db));
	if (sqlite3_step(s) != SQLITE_ROW)
		die("%s: integrity_check: %s", what, sqlite3_errmsg(db));
	t = sqlite3_column_text(s, 0);
	if (!t || strcmp((const char *)t, "ok"))
		die("%s: integrity_check says: %s", what, t ? (char *)t : "");
	if (sqlite3_step(s) != SQLITE_DONE)
		die("%s: integrity_check reported more than one line", what);
	sqlite3_finalize(s);
}

/* Open a saved database file read-only and check it against @want. */
static void check_file(const char *path, const struct state *want,
		       const char *what)
{
	sqlite3 *db;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		die("%s: open %s: %s", what, path, sqlite3_errmsg(db));
	expect_intact(db, what);
	expect_state(db, want, what);
	sqlite3_close(db);
}

/* Counter @key of /proc/cowsnap, or -1. */
static int64_t proc_counter(const char *key)
{
	FILE *f = fopen(CSNAP_PROC, "r");
	char line[256], k[64];
	long long v;
	int64_t ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lld", k, &v) == 2 && !strcmp(k, key)) {
			ret = v;
			break;
		}
	fclose(f);
	return ret;
}

/* The exclusive pages of snapshot @id: what it copied and alone holds. */
static int64_t snap_exclusive(int fd, uint64_t id)
{
	struct cowsnap_snap_entry *e;
	int64_t ret = -1;
	ssize_t n, i;

	n = csnap_snapshot_list(fd, &e);
	if (n < 0)
		die("csnap_snapshot_list: %s", strerror(errno));
	for (i = 0; i < n; i++)
		if (e[i].id == id)
			ret = e[i].exclusive_pages;
	free(e);
	return ret;
}

static void turn_lock(struct writer *w)
{
	unsigned long me;

	pthread_mutex_lock(&w->m);
	me = w->next++;
	while (me != w->serving)
		pthread_cond_wait(&w->cv, &w->m);
	pthread_mutex_unlock(&w->m);
}

static void turn_unlock(struct writer *w)
{
	pthread_mutex_lock(&w->m);
	w->serving++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->m);
}

/* The SQLite page count of the writer's database, in bytes. */
static int64_t db_bytes(struct writer *w)
{
	int64_t pages;

	if (sqlite3_step(w->page_count) != SQLITE_ROW)
		die("page_count: %s", sqlite3_errmsg(w->db));
	pages = sqlite3_column_int64(w->page_count, 0);
	sqlite3_reset(w->page_count);
	return pages * DB_PAGE;
}

/*
 * Open the database held in the region (@bytes of it) on a new connection.
 *
 * Flags 0: neither SQLITE_DESERIALIZE_FREEONCLOSE nor _RESIZEABLE, since
 * the memory is the region's, not sqlite3_malloc()'s: SQLite must never
 * free or realloc it.  The capacity is the whole mapping, so the database
 * grows in place up to the region's end; a write past it fails with
 * SQLITE_FULL (memdb cannot enlarge a buffer it does not own) and that
 * transaction rolls back.  SQLITE_FCNTL_SIZE_LIMIT says the same limit
 * again, so the memdb never believes it may grow further.
 */
static void writer_open(struct writer *w, int64_t bytes)
{
	sqlite3_int64 limit = REGION_SIZE;
	const unsigned char *mode;
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_open(":memory:", &w->db) != SQLITE_OK)
		die("sqlite3_open: %s", sqlite3_errmsg(w->db));
	rc = sqlite3_deserialize(w->db, "main", w->mem, bytes, REGION_SIZE, 0);
	if (rc != SQLITE_OK)
		die("sqlite3_deserialize: %s", sqlite3_errmsg(w->db));
	if (sqlite3_file_control(w->db, "main", SQLITE_FCNTL_SIZE_LIMIT,
				 &limit) != SQLITE_OK || limit != (int64_t)REGION_SIZE)
		die("SQLITE_FCNTL_SIZE_LIMIT: %lld", (long long)limit);
	/*
	 * The rollback journal in heap memory: memdb has no file beside which
	 * a journal could live (it would be created on disk), and WAL is not
	 * supported.  MEMORY rather than OFF so that a failed statement (say
	 * SQLITE_FULL) still rolls back.  The region therefore holds a
	 * consistent database only between transactions, which is where the
	 * writer takes its snapshots.
	 */
	s = prepare(w->db, "PRAGMA journal_mode = MEMORY");
	if (sqlite3_step(s) != SQLITE_ROW)
		die("journal_mode: %s", sqlite3_errmsg(w->db));
	mode = sqlite3_column_text(s, 0);
	if (!mode || strcmp((const char *)mode, "memory"))
		die("journal_mode is %s, not memory", mode ? (char *)mode : "?");
	sqlite3_finalize(s);
}

static void writer_prepare(struct writer *w)
{
	w->begin = prepare(w->db, "BEGIN");
	w->commit = prepare(w->db, "COMMIT");
	w->update = prepare(w->db,
			    "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2");
	w->add_history = prepare(w->db,
				 "INSERT INTO history(src, dst, amount, memo) VALUES (?1, ?2, ?3, ?4)");
	w->add_account = prepare(w->db,
				 "INSERT INTO accounts(id, balance) VALUES (?1, ?2)");
	w->drop_history = prepare(w->db,
				  "DELETE FROM history WHERE id = ?1 RETURNING amount");
	w->page_count = prepare(w->db, "PRAGMA page_count");
}

static void writer_close(struct writer *w)
{
	sqlite3_finalize(w->begin);
	sqlite3_finalize(w->commit);
	sqlite3_finalize(w->update);
	sqlite3_finalize(w->add_history);
	sqlite3_finalize(w->add_account);
	sqlite3_finalize(w->drop_history);
	sqlite3_finalize(w->page_count);
	/* Without FREEONCLOSE, closing leaves the region's bytes alone. */
	if (sqlite3_close(w->db) != SQLITE_OK)
		die("sqlite3_close: %s", sqlite3_errmsg(w->db));
	w->db = NULL;
}

static void update_balance(struct writer *w, int64_t id, int64_t delta)
{
	sqlite3_bind_int64(w->update, 1, delta);
	sqlite3_bind_int64(w->update, 2, id);
	step_done(w->db, w->update);
	if (sqlite3_changes(w->db) != 1)
		die("account %" PRId64 " is missing", id);
	w->st.balance += delta;
	w->st.weighted += id * delta;
}

static void add_history(struct writer *w, int64_t src, int64_t dst,
			int64_t amount)
{
	char memo[MEMO_LEN + 1];

	snprintf(memo, sizeof(memo), "transfer %" PRId64 " -> %" PRId64
		 " of %" PRId64 " .................", src, dst, amount);
	sqlite3_bind_int64(w->add_history, 1, src);
	sqlite3_bind_int64(w->add_history, 2, dst);
	sqlite3_bind_int64(w->add_history, 3, amount);
	sqlite3_bind_text(w->add_history, 4, memo, -1, SQLITE_TRANSIENT);
	step_done(w->db, w->add_history);
	if (!w->st.history++)
		w->st.history_min = sqlite3_last_insert_rowid(w->db);
	w->st.history_max = sqlite3_last_insert_rowid(w->db);
	w->st.amount += amount;
}

/* Retire the oldest history row (ids stay contiguous: min..max). */
static void drop_history(struct writer *w)
{
	sqlite3_bind_int64(w->drop_history, 1, w->st.history_min);
	if (sqlite3_step(w->drop_history) != SQLITE_ROW)
		die("history %" PRId64 " is missing: %s", w->st.history_min,
		    sqlite3_errmsg(w->db));
	w->st.amount -= sqlite3_column_int64(w->drop_history, 0);
	step_done(w->db, w->drop_history);
	w->st.history--;
	w->st.history_min++;
}

static void add_account(struct writer *w, int64_t balance)
{
	int64_t id = w->st.accounts + 1;

	sqlite3_bind_int64(w->add_account, 1, id);
	sqlite3_bind_int64(w->add_account, 2, balance);
	step_done(w->db, w->add_account);
	w->st.accounts++;
	w->st.balance += balance;
	w->st.weighted += id * balance;
}

/*
 * One OLTP transaction: a transfer between two accounts with its history
 * row, and every 16th time a new account.  History is a ring of at most
 * twice the initial rows, and accounts stop at twice the initial count, so
 * the database levels off (freed pages are reused) however fast the
 * machine and the 64 MiB region always suffice.  The C state moves with the SQL
 * so that it always equals the last committed state; a transaction that
 * fails ends the program, so the two never part.
 */
static void one_tx(struct writer *w)
{
	int64_t a, b, amount;
	double t;

	turn_lock(w);
	step_done(w->db, w->begin);
	a = 1 + rnd(w) % w->st.accounts;
	b = 1 + rnd(w) % w->st.accounts;
	amount = 1 + rnd(w) % 100;
	update_balance(w, a, -amount);
	update_balance(w, b, amount);
	add_history(w, a, b, amount);
	if (w->st.history > 2 * (int64_t)w->cfg->history)
		drop_history(w);
	if (!(w->ntx % 16) && w->st.accounts < 2 * (int64_t)w->cfg->accounts)
		add_account(w, 1000);
	step_done(w->db, w->commit);
	__atomic_add_fetch(&w->ntx, 1, __ATOMIC_RELEASE);
	turn_unlock(w);

	t = now();
	if (w->ngaps == w->capgaps) {
		w->capgaps = w->capgaps ? 2 * w->capgaps : 4096;
		w->gaps = realloc(w->gaps, w->capgaps * sizeof(*w->gaps));
		if (!w->gaps)
			die("out of memory");
	}
	w->gaps[w->ngaps++] = t - w->last;
	w->last = t;
}

/*
 * Snapshot between two transactions: the writer's pause is the ioctl.  The
 * size read right after it is the size at the snapshot, since nothing
 * commits in between.
 */
static uint64_t writer_snapshot(struct writer *w, const char *label,
				int64_t *bytes, struct state *st, double *pause)
{
	uint32_t hdr;
	uint64_t id;
	double t = now();

	if (csnap_snapshot_create(w->fd, label, &id))
		die("csnap_snapshot_create: %s", strerror(errno));
	*pause = now() - t;
	*bytes = db_bytes(w);
	*st = w->st;
	/* The header's own page count (offset 28, big-endian) agrees. */
	memcpy(&hdr, w->mem + 28, 4);
	if ((int64_t)__builtin_bswap32(hdr) * DB_PAGE != *bytes)
		die("header says %u pages, page_count %" PRId64 " bytes",
		    __builtin_bswap32(hdr), *bytes);
	return id;
}

/* Serve a snapshot request of the save thread, if there is one. */
static void serve_snapshot(struct writer *w)
{
	if (!__atomic_load_n(&w->snap_req, __ATOMIC_ACQUIRE))
		return;
	w->snap_req = 0;
	w->snap_id = writer_snapshot(w, "save", &w->snap_bytes, &w->snap_st,
				     &w->snap_pause);
	w->snap_ntx = w->ntx;
	pthread_mutex_lock(&w->m);
	w->snap_ready = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->m);
}

static void gaps_reset(struct writer *w)
{
	w->ngaps = 0;
	w->last = now();
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void gaps_stats(struct writer *w, double *p99, double *worst)
{
	size_t n = w->ngaps;

	*p99 = *worst = 0;
	if (!n)
		return;
	qsort(w->gaps, n, sizeof(*w->gaps), cmp_double);
	*p99 = w->gaps[(size_t)((n - 1) * 0.99)];
	*worst = w->gaps[n - 1];
}

/* The writer alone for @secs: transactions per second, p99, worst gap. */
static void writer_alone(struct writer *w, double secs, double *tps,
			 double *p99, double *worst)
{
	uint64_t tx0 = w->ntx;
	double t0 = now();

	gaps_reset(w);
	while (now() - t0 < secs)
		one_tx(w);
	*tps = (w->ntx - tx0) / (now() - t0);
	gaps_stats(w, p99, worst);
}

/* Write @len bytes of @p to @fd entirely. */
static void write_full(int fd, const void *p, size_t len, const char *what)
{
	const char *c = p;
	ssize_t n;

	while (len) {
		n = write(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write %s: %s", what, n ? strerror(errno) : "0");
		c += n;
		len -= n;
	}
}

struct save {
	struct writer *w;
	struct result *r;
};

/*
 * cowsnap: ask the writer for a snapshot at its next transaction boundary,
 * then copy the snapshot's database bytes to the file through a read-only
 * mapping of the snapshot fd while the writer goes on.
 */
static void *save_cowsnap(void *arg)
{
	struct save *sv = arg;
	struct writer *w = sv->w;
	struct result *r = sv->r;
	double t0 = now();
	size_t len;
	void *p;
	int sfd, out;

	pthread_mutex_lock(&w->m);
	w->snap_ready = 0;
	__atomic_store_n(&w->snap_req, 1, __ATOMIC_RELEASE);
	while (!w->snap_ready)
		pthread_cond_wait(&w->cv, &w->m);
	pthread_mutex_unlock(&w->m);

	r->expect = w->snap_st;
	r->pause = w->snap_pause;
	r->file_bytes = w->snap_bytes;
	/*
	 * The correctness run makes sure the copy reads pages the writer has
	 * changed since the snapshot: it waits for a few of its commits.
	 */
	if (w->cfg->check)
		while (__atomic_load_n(&w->ntx, __ATOMIC_ACQUIRE) <
		       w->snap_ntx + w->cfg->min_window_tx)
			usleep(1000);
	sfd = csnap_snapshot_open(w->fd, w->snap_id, O_CLOEXEC);
	if (sfd < 0)
		die("csnap_snapshot_open: %s", strerror(errno));
	len = (w->snap_bytes + getpagesize() - 1) & ~(size_t)(getpagesize() - 1);
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, sfd, 0);
	if (p == MAP_FAILED)
		die("mmap of the snapshot: %s", strerror(errno));
	out = open(r->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		die("open %s: %s", r->path, strerror(errno));
	write_full(out, p, w->snap_bytes, r->path);
	if (fsync(out) || close(out))
		die("close %s: %s", r->path, strerror(errno));
	munmap(p, len);
	close(sfd);
	r->save_s = now() - t0;
	__atomic_store_n(&w->save_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * The online backup API, a few pages per step.  The source is the
 * writer's own connection, so each step runs between two of its
 * transactions (the turn lock), and SQLite updates pages already copied
 * when the writer changes them: the file ends as the state at the last
 * step, which is what it is checked against.
 */
static void *save_backup(void *arg)
{
	struct save *sv = arg;
	struct writer *w = sv->w;
	struct result *r = sv->r;
	sqlite3_backup *b;
	double t0 = now();
	sqlite3 *dst;
	int rc;

	if (sqlite3_open(r->path, &dst) != SQLITE_OK)
		die("open %s: %s", r->path, sqlite3_errmsg(dst));
	turn_lock(w);
	b = sqlite3_backup_init(dst, "main", w->db, "main");
	turn_unlock(w);
	if (!b)
		die("sqlite3_backup_init: %s", sqlite3_errmsg(dst));
	do {
		turn_lock(w);
		rc = sqlite3_backup_step(b, 8);
		if (rc == SQLITE_DONE)
			r->expect = w->st;
		turn_unlock(w);
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	if (rc != SQLITE_DONE)
		die("sqlite3_backup_step: %s", sqlite3_errstr(rc));
	turn_lock(w);
	rc = sqlite3_backup_finish(b);
	turn_unlock(w);
	if (rc != SQLITE_OK)
		die("sqlite3_backup_finish: %s", sqlite3_errmsg(dst));
	if (sqlite3_close(dst) != SQLITE_OK)
		die("close %s", r->path);
	r->save_s = now() - t0;
	__atomic_store_n(&w->save_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* VACUUM INTO: one statement on the writer's connection; it waits. */
static void *save_vacuum(void *arg)
{
	struct save *sv = arg;
	struct writer *w = sv->w;
	struct result *r = sv->r;
	double t0 = now();
	char sql[128];

	snprintf(sql, sizeof(sql), "VACUUM INTO '%s'", r->path);
	turn_lock(w);
	r->expect = w->st;
	exec_sql(w->db, sql);
	turn_unlock(w);
	r->save_s = now() - t0;
	__atomic_store_n(&w->save_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* One save method with the writer running beside it, then its checks. */
static void run_save(struct writer *w, struct result *r,
		     void *(*fn)(void *))
{
	sqlite3_int64 cur0, hw, cur;
	struct save sv = { w, r };
	int64_t cow0 = proc_counter("cow_faults");
	uint64_t tx0 = w->ntx;
	pthread_t th;
	struct stat stb;
	double t0;

	unlink(r->path);
	sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur0, &hw, 1);
	w->save_done = 0;
	gaps_reset(w);
	t0 = now();
	if (pthread_create(&th, NULL, fn, &sv))
		die("pthread_create");
	/* The writer goes on until the save is done. */
	while (!__atomic_load_n(&w->save_done, __ATOMIC_ACQUIRE)) {
		serve_snapshot(w);
		one_tx(w);
	}
	pthread_join(th, NULL);
	r->window_s = now() - t0;
	r->tx = w->ntx - tx0;
	gaps_stats(w, &r->p99, &r->worst);
	sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hw, 0);
	r->heap = hw - cur0;
	if (fn == save_cowsnap) {
		int64_t cow1 = proc_counter("cow_faults");

		r->cow_pages = snap_exclusive(w->fd, w->snap_id);
		if (cow0 >= 0 && cow1 >= 0)
			printf("%s: %" PRId64 " cow faults in the window, "
			       "%" PRId64 " pages held by the snapshot alone\n",
			       r->method, cow1 - cow0, r->cow_pages);
		if (csnap_snapshot_delete(w->fd, w->snap_id))
			die("csnap_snapshot_delete: %s", strerror(errno));
	} else {
		r->cow_pages = -1;
	}
	if (stat(r->path, &stb))
		die("stat %s: %s", r->path, strerror(errno));
	if (fn != save_vacuum && stb.st_size < r->file_bytes)
		die("%s: file has %lld bytes, the database %" PRId64,
		    r->method, (long long)stb.st_size, r->file_bytes);
	r->file_bytes = stb.st_size;
	check_file(r->path, &r->expect, r->method);
	printf("ok: %s file passes integrity_check and holds the state of "
	       "its moment (%" PRId64 " accounts, %" PRId64 " history rows);"
	       " the writer committed %" PRIu64 " transactions meanwhile\n",
	       r->method, r->expect.accounts, r->expect.history, r->tx);
}

/* The answers the reader compares between rounds. */
struct answers {
	struct state st;
	int64_t top_src[5], top_sum[5];
	int64_t joined;
};

struct reader_shm {
	int rounds;
	int bad;
	double query_s;
	char msg[512];
};

static void __attribute__((noreturn, format(printf, 2, 3)))
reader_fail(struct reader_shm *shm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(shm->msg, sizeof(shm->msg), fmt, ap);
	va_end(ap);
	shm->bad = 1;
	_exit(1);
}

static void reader_query(sqlite3 *db, struct answers *a,
			 struct reader_shm *shm)
{
	sqlite3_stmt *s;
	int i = 0;

	db_state(db, &a->st);
	/* A grouped scan of the whole history, and a join over it. */
	if (sqlite3_prepare_v2(db,
			       "SELECT src, sum(amount) FROM history GROUP BY src "
			       "ORDER BY 2 DESC, 1 LIMIT 5", -1, &s, NULL))
		reader_fail(shm, "prepare: %s", sqlite3_errmsg(db));
	memset(a->top_src, 0, sizeof(a->top_src));
	memset(a->top_sum, 0, sizeof(a->top_sum));
	while (sqlite3_step(s) == SQLITE_ROW && i < 5) {
		a->top_src[i] = sqlite3_column_int64(s, 0);
		a->top_sum[i++] = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	query_ints(db, "SELECT coalesce(sum(h.amount * a.balance), 0) "
		   "FROM history h JOIN accounts a ON a.id = h.dst",
		   &a->joined, 1);
}

/*
 * The MVCC reader, in its own process: a new handle attached by name, the
 * snapshot mapped read-only and deserialized SQLITE_DESERIALIZE_READONLY
 * (a write would fault on the PROT_READ mapping, so SQLite must not try).
 * Every round must give the same answers, and the first must be the
 * writer's state at the snapshot.
 */
static void reader_main(const char *name, uint64_t id, int64_t bytes,
			const struct state *want, double secs, int rounds,
			struct reader_shm *shm)
{
	struct answers first, a;
	char x[256], y[256];
	sqlite3 *db;
	double t0;
	size_t len;
	void *p;
	int h, sfd;

	h = csnap_open(O_RDONLY);
	if (h < 0 || csnap_region_attach(h, name))
		reader_fail(shm, "attach %s: %s", name, strerror(errno));
	sfd = csnap_snapshot_open(h, id, O_CLOEXEC);
	if (sfd < 0)
		reader_fail(shm, "csnap_snapshot_open: %s", strerror(errno));
	len = (bytes + getpagesize() - 1) & ~(size_t)(getpagesize() - 1);
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, sfd, 0);
	if (p == MAP_FAILED)
		reader_fail(shm, "mmap: %s", strerror(errno));
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_deserialize(db, "main", p, bytes, bytes,
				SQLITE_DESERIALIZE_READONLY) != SQLITE_OK)
		reader_fail(shm, "deserialize: %s", sqlite3_errmsg(db));
	t0 = now();
	reader_query(db, &first, shm);
	shm->rounds = 1;
	if (!state_eq(&first.st, want))
		reader_fail(shm, "reader sees %s, the snapshot had %s",
			    state_str(&first.st, x, sizeof(x)),
			    state_str(want, y, sizeof(y)));
	while (shm->rounds < rounds || now() - t0 < secs) {
		reader_query(db, &a, shm);
		shm->rounds++;
		if (memcmp(&a, &first, sizeof(a)))
			reader_fail(shm, "round %d answers differ from round 1 "
				    "(%s)", shm->rounds,
				    state_str(&a.st, x, sizeof(x)));
	}
	shm->query_s = (now() - t0) / shm->rounds;
	sqlite3_close(db);
	munmap(p, len);
	close(sfd);
	close(h);
	_exit(0);
}

static void part_mvcc(struct writer *w)
{
	const struct config *cfg = w->cfg;
	double alone, with, p99, worst, wp99, wworst, pause, t0;
	struct reader_shm *shm;
	struct state st, live;
	uint64_t id, tx0;
	int64_t bytes;
	int status;
	pid_t pid;

	writer_alone(w, cfg->alone_s, &alone, &p99, &worst);
	id = writer_snapshot(w, "mvcc", &bytes, &st, &pause);
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(shm, 0, sizeof(*shm));
	fflush(stdout);
	/* No other thread runs now: the child starts from a quiet SQLite. */
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid)
		reader_main(w->name, id, bytes, &st, cfg->reader_s,
			    cfg->reader_rounds, shm);
	tx0 = w->ntx;
	gaps_reset(w);
	t0 = now();
	for (;;) {
		one_tx(w);
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
	}
	with = (w->ntx - tx0) / (now() - t0);
	gaps_stats(w, &wp99, &wworst);
	if (!WIFEXITED(status) || WEXITSTATUS(status) || shm->bad)
		die("MVCC reader: %s (status 0x%x)",
		    shm->msg[0] ? shm->msg : "died", status);
	/* The live database moved on meanwhile. */
	turn_lock(w);
	db_state(w->db, &live);
	turn_unlock(w);
	if (state_eq(&live, &st) || !state_eq(&live, &w->st))
		die("live database: writer state and SQL disagree, or nothing "
		    "was committed during the reader");
	printf("ok: MVCC reader ran %d rounds on snapshot %" PRIu64
	       " (%" PRId64 " history rows) and saw the snapshot's state every "
	       "time while the writer committed %" PRIu64 " more (live: %"
	       PRId64 " history rows, ids %" PRId64 "..%" PRId64 ")\n",
	       shm->rounds, id, st.history, w->ntx - tx0, live.history,
	       live.history_min, live.history_max);
	if (!cfg->check) {
		printf("\n### MVCC reader (a second process on a snapshot)\n\n");
		printf("| writer | tx/s | p99 gap (ms) | worst gap (ms) |\n");
		printf("|---|---|---|---|\n");
		printf("| alone | %.0f | %.2f | %.2f |\n", alone, p99 * 1e3,
		       worst * 1e3);
		printf("| with the reader (%d rounds, %.2f s per round) | %.0f | "
		       "%.2f | %.2f |\n", shm->rounds, shm->query_s, with,
		       wp99 * 1e3, wworst * 1e3);
		printf("\nsnapshot ioctl: %.3f ms\n\n", pause * 1e3);
	}
	munmap(shm, sizeof(*shm));
	if (csnap_snapshot_delete(w->fd, id))
		die("csnap_snapshot_delete: %s", strerror(errno));
}

static void part_rollback(struct writer *w)
{
	struct state st, bad;
	uint64_t id, pages = 0;
	int64_t bytes;
	double pause, t;
	size_t len;
	void *p;
	int i, sfd;

	id = writer_snapshot(w, "before-accident", &bytes, &st, &pause);
	for (i = 0; i < w->cfg->rollback_tx; i++)
		one_tx(w);
	/* The accident: a bad bulk update and delete, committed. */
	exec_sql(w->db, "BEGIN; UPDATE accounts SET balance = 0 WHERE id % 2;"
		 " DELETE FROM history WHERE id % 3 = 0; COMMIT");
	db_state(w->db, &bad);
	if (state_eq(&bad, &st))
		die("the accident changed nothing");

	/*
	 * Restore needs no unmapping: the live view changes under every
	 * mapping.  But SQLite caches pages and the database size, so the
	 * connection goes first and a new one reads the restored bytes.
	 */
	writer_close(w);
	t = now();
	if (csnap_restore(w->fd, id, id, &pages))
		die("csnap_restore: %s", strerror(errno));
	t = now() - t;
	writer_open(w, bytes);
	writer_prepare(w);
	expect_intact(w->db, "restored database");
	expect_state(w->db, &st, "restored database");
	if (db_bytes(w) != bytes)
		die("restored database has %" PRId64 " bytes, not %" PRId64,
		    db_bytes(w), bytes);
	/* Byte for byte the snapshot's database. */
	sfd = csnap_snapshot_open(w->fd, id, O_CLOEXEC);
	if (sfd < 0)
		die("csnap_snapshot_open: %s", strerror(errno));
	len = (bytes + getpagesize() - 1) & ~(size_t)(getpagesize() - 1);
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, sfd, 0);
	if (p == MAP_FAILED)
		die("mmap of the snapshot: %s", strerror(errno));
	if (memcmp(p, w->mem, bytes))
		die("restored region differs from the snapshot");
	munmap(p, len);
	close(sfd);
	/* The writer goes on from the restored state. */
	w->st = st;
	for (i = 0; i < 10; i++)
		one_tx(w);
	expect_state(w->db, &w->st, "database after restore and 10 tx");
	printf("ok: rollback: restored snapshot %" PRIu64 " (%" PRIu64
	       " pages in %.3f ms) after %d transactions and a bad update; "
	       "integrity_check ok, state and bytes equal the snapshot's, "
	       "and the writer goes on\n", id, pages, t * 1e3,
	       w->cfg->rollback_tx);
	if (csnap_snapshot_delete(w->fd, id))
		die("csnap_snapshot_delete: %s", strerror(errno));
}

/*
 * A valid empty database to start the region with: memdb opens only an
 * existing image, so make one in an ordinary in-memory database with our
 * page size and serialize it.
 */
static void init_image(struct writer *w)
{
	sqlite3_int64 sz;
	unsigned char *img;
	sqlite3 *db;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		die("sqlite3_open: %s", sqlite3_errmsg(db));
	/* user_version writes page 1, so the image has a page. */
	exec_sql(db, "PRAGMA page_size = 4096; PRAGMA user_version = 1");
	img = sqlite3_serialize(db, "main", &sz, 0);
	if (!img || sz != DB_PAGE)
		die("sqlite3_serialize: %lld bytes", (long long)sz);
	memcpy(w->mem, img, sz);
	sqlite3_free(img);
	sqlite3_close(db);
	writer_open(w, sz);
}

static void load(struct writer *w)
{
	const struct config *cfg = w->cfg;
	int i;

	exec_sql(w->db,
		 "CREATE TABLE accounts(id INTEGER PRIMARY KEY,"
		 " balance INTEGER NOT NULL);"
		 "CREATE TABLE history(id INTEGER PRIMARY KEY,"
		 " src INTEGER NOT NULL, dst INTEGER NOT NULL,"
		 " amount INTEGER NOT NULL, memo TEXT);"
		 "CREATE INDEX history_src ON history(src)");
	writer_prepare(w);
	exec_sql(w->db, "BEGIN");
	for (i = 0; i < cfg->accounts; i++)
		add_account(w, 1000);
	for (i = 0; i < cfg->history; i++)
		add_history(w, 1 + rnd(w) % cfg->accounts,
			    1 + rnd(w) % cfg->accounts, 1 + rnd(w) % 100);
	exec_sql(w->db, "COMMIT");
	expect_state(w->db, &w->st, "loaded database");
}

static void print_results(const struct result *r, int n, double alone,
			  double p99, double worst)
{
	char mem[128];
	int i;

	printf("\n### Point-in-time save while the writer runs\n\n");
	printf("| method | save time (s) | writer tx/s during save | "
	       "writer p99 gap (ms) | writer worst gap (ms) | extra memory | "
	       "file (KiB) |\n");
	printf("|---|---|---|---|---|---|---|\n");
	printf("| (writer alone) | - | %.0f | %.2f | %.2f | - | - |\n",
	       alone, p99 * 1e3, worst * 1e3);
	for (i = 0; i < n; i++) {
		if (r[i].cow_pages >= 0)
			snprintf(mem, sizeof(mem),
				 "%" PRId64 " pages copied (%" PRId64
				 " KiB); heap +%" PRId64 " KiB",
				 r[i].cow_pages, r[i].cow_pages * 4,
				 r[i].heap / 1024);
		else
			snprintf(mem, sizeof(mem), "heap peak +%" PRId64 " KiB",
				 r[i].heap / 1024);
		printf("| %s | %.3f | %.0f | %.2f | %.2f | %s | %" PRId64
		       " |\n", r[i].method, r[i].save_s,
		       r[i].tx / r[i].window_s, r[i].p99 * 1e3,
		       r[i].worst * 1e3, mem, r[i].file_bytes / 1024);
	}
	printf("\ncowsnap snapshot ioctl (the writer's only pause): %.3f ms\n",
	       r[0].pause * 1e3);
	printf("gap = time between two consecutive commits of the writer; "
	       "heap = SQLite's heap high water over its level at the start "
	       "(sqlite3_status64); the region's pages are not heap.\n\n");
}

int main(int argc, char **argv)
{
	static const struct config check = {
		.check = 1, .accounts = 300, .history = 1000, .alone_s = 0.2,
		.reader_s = 0, .reader_rounds = 2, .min_window_tx = 20,
		.rollback_tx = 30,
	}, measure = {
		.accounts = 20000, .history = 60000, .alone_s = 2.0,
		.reader_s = 3.0, .reader_rounds = 3, .min_window_tx = 20,
		.rollback_tx = 200,
	};
	struct result res[3] = {
		{ .method = "cowsnap snapshot + copy" },
		{ .method = "sqlite3_backup (8 pages/step)" },
		{ .method = "VACUUM INTO" },
	};
	static struct writer wr;
	struct writer *w = &wr;
	double alone, p99, worst;
	struct cowsnap_info info;
	int i;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--check"))) {
		fprintf(stderr, "usage: %s [--check]\n", argv[0]);
		return 2;
	}
	w->cfg = argc == 2 ? &check : &measure;
	main_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The heap figures of the table need SQLite's memory statistics. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1);
	pthread_mutex_init(&w->m, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->rng = 0x5eed5eedULL;

	w->fd = csnap_open(O_RDWR);
	if (w->fd < 0)
		die("csnap_open: %s", strerror(errno));
	snprintf(w->name, sizeof(w->name), "sqlite-demo-%d", (int)getpid());
	if (csnap_region_create(w->fd, w->name, REGION_SIZE, 0600))
		die("csnap_region_create: %s", strerror(errno));
	strcpy(region_name, w->name);
	atexit(cleanup);
	w->mem = csnap_region_map(w->fd, 0, PROT_READ | PROT_WRITE);
	if (!w->mem)
		die("csnap_region_map: %s", strerror(errno));
	for (i = 0; i < 3; i++) {
		snprintf(res[i].path, sizeof(res[i].path),
			 "/tmp/sqlite_demo-%d-%d.db", (int)getpid(), i);
		strcpy(paths[i], res[i].path);
	}

	init_image(w);
	load(w);
	printf("sqlite_demo: SQLite %s, database in region %s (%llu MiB), "
	       "%d accounts, %d history rows, %" PRId64 " KiB\n",
	       sqlite3_libversion(), w->name, REGION_SIZE >> 20,
	       w->cfg->accounts, w->cfg->history, db_bytes(w) / 1024);

	/* 1. Save. */
	writer_alone(w, w->cfg->alone_s, &alone, &p99, &worst);
	run_save(w, &res[0], save_cowsnap);
	run_save(w, &res[1], save_backup);
	run_save(w, &res[2], save_vacuum);
	if (!w->cfg->check)
		print_results(res, 3, alone, p99, worst);

	/* 2. MVCC reader. */
	part_mvcc(w);

	/* 3. Rollback. */
	part_rollback(w);

	expect_intact(w->db, "live database at the end");
	expect_state(w->db, &w->st, "live database at the end");
	if (csnap_region_info(w->fd, &info))
		die("csnap_region_info: %s", strerror(errno));
	if (info.nr_snapshots)
		die("%llu snapshots left", (unsigned long long)info.nr_snapshots);
	printf("region at the end: %llu resident pages, %llu shared, "
	       "database %" PRId64 " KiB\n",
	       (unsigned long long)info.resident_pages,
	       (unsigned long long)info.shared_pages, db_bytes(w) / 1024);
	writer_close(w);
	munmap(w->mem, REGION_SIZE);
	cleanup();
	close(w->fd);
	free(w->gaps);
	printf("sqlite_demo: all checks passed\n");
	return 0;
}
