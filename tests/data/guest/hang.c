/*
 * A guest test that never finishes: the harness must call it a hang after
 * its timeout, dump blocked tasks and give the next test a fresh boot.
 * @timeout: 4
 */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("TAP version 13\n1..1\n");
	fflush(stdout);
	for (;;)
		pause();
}
