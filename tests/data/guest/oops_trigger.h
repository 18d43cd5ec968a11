/*
 * oops_trigger.h - body of the generated trig_<case>.c guest tests that make a
 * real kernel print a real report through tests/data/oops/capture/harness_oops.ko
 * (loaded by the host before the test).  The trigger is written from a child,
 * so an oops kills the child, not the test; the test itself exits 0: the
 * harness must still call the run an oops, a crashing test is never a pass.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void put(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);

	if (fd >= 0) {
		if (write(fd, value, strlen(value)) < 0)
			perror(path);
		close(fd);
	}
}

int main(void)
{
	pid_t child;

	printf("TAP version 13\n1..1\n");
	fflush(stdout);
	put("/proc/sys/kernel/watchdog_thresh", "1");
	put("/proc/sys/kernel/hung_task_timeout_secs", "3");
	put("/sys/module/harness_oops/parameters/spin_secs", "8");
	child = fork();
	if (child == 0) {
		if (!strcmp(CASE, "sysrq"))
			put("/proc/sysrq-trigger", "c");
		else
			put("/proc/harness_oops", CASE);
		_exit(0);
	}
	waitpid(child, NULL, 0);
	printf("ok 1 - triggered %s\n", CASE);
	fflush(stdout);
#ifdef STUCK
	/* like a reproducer whose sibling thread waits on a lock the oops left held */
	for (;;)
		pause();
#endif
	return 0;
}
