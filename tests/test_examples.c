// SPDX-License-Identifier: GPL-2.0
/*
 * The example programs (examples/NAME/, /bin/example_NAME in the guest) in
 * their short correctness mode: each must exit 0.  On failure the test
 * prints the program's output, each line behind "| " so that its own
 * "FAIL ..." lines do not count as verdicts of their own.
 */
#include <sys/wait.h>
#include "harness.h"

#define OUT_MAX (256 << 10)

/*
 * Run @argv with stdout and stderr into a pipe; returns the wait status.
 * At most @len - 1 bytes of output land in @out, NUL-terminated; the rest
 * is read and dropped so that the program never blocks on a full pipe.
 */
static int run(char *const argv[], char *out, size_t len)
{
	size_t used = 0;
	char buf[4096];
	int p[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe(p))
		FAIL("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (!pid) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	while ((n = read(p[0], buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			FAIL("read: %s", strerror(errno));
		}
		if (used + n >= len)
			n = len - 1 - used;
		memcpy(out + used, buf, n);
		used += n;
	}
	out[used] = 0;
	close(p[0]);
	if (waitpid(pid, &status, 0) != pid)
		FAIL("waitpid: %s", strerror(errno));
	return status;
}

/* Print @out line by line behind "| ". */
static void show(const char *out)
{
	const char *nl;

	while (*out) {
		nl = strchr(out, '\n');
		if (!nl)
			nl = out + strlen(out);
		printf("| %.*s\n", (int)(nl - out), out);
		out = *nl ? nl + 1 : nl;
	}
	fflush(stdout);
}

/*
 * Run @prog --check: it must exit 0 and print @last; on failure show its
 * output.
 */
static void run_check(const char *prog, const char *last)
{
	static char out[OUT_MAX];
	char *const argv[] = { (char *)prog, "--check", NULL };
	int status = run(argv, out, sizeof(out));

	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		show(out);
		FAIL("%s --check: %s %d", prog,
		     WIFEXITED(status) ? "exit" : "signal",
		     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	if (!strstr(out, last)) {
		show(out);
		FAIL("%s --check exited 0 without its last line", prog);
	}
}

/*
 * examples/sqlite: an SQLite database in a region; a point-in-time save
 * through a snapshot (checked against the backup API and VACUUM INTO), an
 * MVCC reader process on a snapshot, and a rollback with csnap_restore().
 */
TEST(sqlite_save_mvcc_rollback)
{
	run_check("/bin/example_sqlite", "sqlite_demo: all checks passed");
}

/*
 * examples/fuzzreset: a config parser's state in a region, reset after
 * each input by csnap_restore(); results equal those of a fork loop, and
 * the region byte-identical to its snapshot after sampled restores.
 */
TEST(fuzzreset_restore_equals_fork)
{
	run_check("/bin/example_fuzzreset", "fuzzreset: all checks passed");
}

/*
 * examples/kvsave: a key-value server (RESP over a unix socket) whose
 * table is in a region; BGSAVE walks a snapshot while a writer goes on,
 * and every saved file must reload into exactly the table of its moment.
 */
TEST(kvsave_bgsave_reload)
{
	run_check("/bin/example_kvsave", "kvsave_demo: all checks passed");
}
