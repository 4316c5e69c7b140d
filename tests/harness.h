/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small test harness for the in-guest programs, in the spirit of
 * tools/testing/selftests/kselftest_harness.h.
 *
 *   TEST(name) { ... }                     a plain test
 *   FIXTURE(f) { fields };                 per-test state
 *   FIXTURE_SETUP(f) { self->... }         runs before each TEST_F(f, ...)
 *   FIXTURE_TEARDOWN(f) { ... }            runs after it, also on failure
 *   TEST_F(f, name) { self->... }
 *
 * Every test runs in its own forked process group with a timeout
 * (TH_TIMEOUT seconds, default 120), so a crash or hang fails only that
 * test.  A test still there TH_TIMEOUT + 30 s after its start is stuck in
 * the kernel, where SIGALRM cannot reach: the kernel stacks of all tasks
 * in D state are printed, and the program ends.  One line per test on
 * stdout: "PASS prog.test (time)", "FAIL prog.test: why" or "SKIP
 * prog.test: why".  Exit status is non-zero if any failed.
 * "prog ARG" runs only the tests whose name contains ARG, or one of its
 * comma-separated parts.
 */
#ifndef COWSNAP_TEST_HARNESS_H
#define COWSNAP_TEST_HARNESS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#ifndef TH_TIMEOUT
#define TH_TIMEOUT 120
#endif

struct th_test {
	const char *name;
	void (*run)(void);
	struct th_test *next;
};

static struct th_test *th_head, **th_tail = &th_head;
static void (*th_teardown)(void *);
static void *th_teardown_arg;
static const char *th_prog, *th_cur;

static inline void th_register(struct th_test *t)
{
	*th_tail = t;
	th_tail = &t->next;
}

/* Report failure of the running test and end its process. */
static inline void __attribute__((noreturn, format(printf, 3, 4)))
th_fail(const char *file, int line, const char *fmt, ...)
{
	void (*td)(void *) = th_teardown;
	va_list ap;

	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	th_teardown = NULL;
	if (td)
		td(th_teardown_arg);
	_exit(1);
}

/* Skip the running test, with a reason; the fixture is torn down. */
#define SKIP(...) do {						\
	void (*__td)(void *) = th_teardown;			\
								\
	printf("SKIP %s.%s: ", th_prog, th_cur);		\
	printf(__VA_ARGS__);					\
	printf("\n");						\
	fflush(stdout);						\
	th_teardown = NULL;					\
	if (__td)						\
		__td(th_teardown_arg);				\
	_exit(77);						\
} while (0)

#define TH_CMP(a, op, b) do {						\
	long long __a = (long long)(a), __b = (long long)(b);		\
	if (!(__a op __b))						\
		th_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld "	\
			"(errno %d %s)", #a, #op, #b, __a, __b,	\
			errno, strerror(errno));			\
} while (0)

#define ASSERT_EQ(a, b)	TH_CMP(a, ==, b)
#define ASSERT_NE(a, b)	TH_CMP(a, !=, b)
#define ASSERT_LT(a, b)	TH_CMP(a, <, b)
#define ASSERT_LE(a, b)	TH_CMP(a, <=, b)
#define ASSERT_GT(a, b)	TH_CMP(a, >, b)
#define ASSERT_GE(a, b)	TH_CMP(a, >=, b)
#define ASSERT_TRUE(c)	TH_CMP(!!(c), ==, 1)
#define ASSERT_FALSE(c)	TH_CMP(!!(c), ==, 0)
/* @call must fail with -1 and errno @e. */
#define ASSERT_ERRNO(call, e) do {					\
	errno = 0;							\
	long long __r = (long long)(call);				\
	if (__r != -1 || errno != (e))					\
		th_fail(__FILE__, __LINE__, "%s: want -1/%s, got %lld/%s", \
			#call, strerror(e), __r, strerror(errno));	\
} while (0)
#define FAIL(...) th_fail(__FILE__, __LINE__, __VA_ARGS__)

#define TEST(name)							\
	static void test_##name(void);					\
	static struct th_test th_t_##name = { #name, test_##name, NULL }; \
	static void __attribute__((constructor)) th_reg_##name(void)	\
	{ th_register(&th_t_##name); }					\
	static void test_##name(void)

#define FIXTURE(f) struct th_fx_##f
#define FIXTURE_SETUP(f) static void th_setup_##f(struct th_fx_##f *self)
#define FIXTURE_TEARDOWN(f) static void th_teardown_##f(struct th_fx_##f *self)

#define TEST_F(f, name)							\
	static void th_body_##f##_##name(struct th_fx_##f *self);	\
	static void th_td_##f##_##name(void *p)				\
	{ th_teardown_##f(p); }						\
	TEST(f##_##name)						\
	{								\
		static struct th_fx_##f fx;				\
		th_setup_##f(&fx);					\
		th_teardown_arg = &fx;					\
		th_teardown = th_td_##f##_##name;			\
		th_body_##f##_##name(&fx);				\
		th_teardown = NULL;					\
		th_teardown_##f(&fx);					\
	}								\
	static void th_body_##f##_##name(struct th_fx_##f *self)

/*
 * Whole file @path (up to @size - 1 bytes) into @buf, NUL-terminated: its
 * length, or -1 with errno if it cannot be opened.
 */
static inline ssize_t th_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t off = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while (off < size - 1 && (n = read(fd, buf + off, size - 1 - off)) > 0)
		off += n;
	close(fd);
	buf[off] = 0;
	return off;
}

/* Print the kernel stack of every task in D state (the console may not). */
static inline void th_dump_blocked(void)
{
	DIR *pd = opendir("/proc"), *td;
	struct dirent *p, *t;
	char path[600], buf[4096];

	while (pd && (p = readdir(pd))) {
		if (p->d_name[0] < '0' || p->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task", p->d_name);
		td = opendir(path);
		while (td && (t = readdir(td))) {
			char *st;

			if (t->d_name[0] < '0' || t->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/task/%s/stat",
				 p->d_name, t->d_name);
			if (th_read_file(path, buf, sizeof(buf)) <= 0)
				continue;
			st = strrchr(buf, ')');
			if (!st || st[1] != ' ' || st[2] != 'D')
				continue;
			printf("# D-state task %s: %.*s\n", t->d_name,
			       (int)(st - buf + 1), buf);
			snprintf(path, sizeof(path), "/proc/%s/task/%s/stack",
				 p->d_name, t->d_name);
			if (th_read_file(path, buf, sizeof(buf)) > 0)
				printf("%s", buf);
		}
		if (td)
			closedir(td);
	}
	if (pd)
		closedir(pd);
	fflush(stdout);
}

static inline void th_wake(int sig)
{
	(void)sig;
}

/*
 * Wait for test @pid (@name); 0, or -1 if it outlived TH_TIMEOUT + 30 s and a
 * SIGKILL: something is stuck in the kernel, stacks printed.
 */
static inline int th_wait(pid_t pid, int *status, const char *name)
{
	struct sigaction sa = { .sa_handler = th_wake }, old;
	int ret = 0;

	/* No SA_RESTART: the alarm interrupts waitpid(). */
	sigaction(SIGALRM, &sa, &old);
	alarm(TH_TIMEOUT + 30);
	if (waitpid(pid, status, 0) != pid) {
		printf("# %s.%s: no exit 30 s after its timeout; tasks "
		       "in D state:\n", th_prog, name);
		th_dump_blocked();
		kill(-pid, SIGKILL);
		alarm(30);
		if (waitpid(pid, status, 0) != pid)
			ret = -1;
	}
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	return ret;
}

static inline double th_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int th_run_one(struct th_test *t)
{
	double t0 = th_now();
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("FAIL %s.%s: fork: %s\n", th_prog, t->name,
		       strerror(errno));
		return 1;
	}
	if (!pid) {
		setpgid(0, 0);
		th_cur = t->name;
		alarm(TH_TIMEOUT);
		t->run();
		fflush(stdout);
		_exit(0);
	}
	if (th_wait(pid, &status, t->name)) {
		printf("FAIL %s.%s: stuck in the kernel (stacks above)\n",
		       th_prog, t->name);
		fflush(stdout);
		_exit(2);	/* what follows would block on it too */
	}
	kill(-pid, SIGKILL);	/* helpers the test left behind */
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		/* The time, for whoever trims the run (results.log keeps it). */
		printf("PASS %s.%s (%.1f s)\n", th_prog, t->name,
		       th_now() - t0);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		return 0;	/* the child printed the SKIP line */
	if (WIFSIGNALED(status))
		printf("FAIL %s.%s: killed by signal %d%s\n", th_prog, t->name,
		       WTERMSIG(status),
		       WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
	else
		printf("FAIL %s.%s: exit %d\n", th_prog, t->name,
		       WEXITSTATUS(status));
	return 1;
}

/* 1 if @name contains one of the comma-separated parts of @filter. */
static inline int th_selected(const char *name, const char *filter)
{
	char buf[256], *part, *save;

	snprintf(buf, sizeof(buf), "%s", filter);
	for (part = strtok_r(buf, ",", &save); part;
	     part = strtok_r(NULL, ",", &save))
		if (strstr(name, part))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *slash = strrchr(argv[0], '/');
	struct th_test *t;
	int failed = 0;

	th_prog = slash ? slash + 1 : argv[0];
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (t = th_head; t; t = t->next) {
		if (argc > 1 && !th_selected(t->name, argv[1]))
			continue;
		failed |= th_run_one(t);
	}
	return failed;
}

#endif /* COWSNAP_TEST_HARNESS_H */
