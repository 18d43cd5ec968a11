/* Skips the whole program with a reason, as a reproducer does on an old kernel. */
#include <stdio.h>

int main(void)
{
	printf("TAP version 13\n1..0 # SKIP this kernel lacks the frobnicator\n");
	return 4;
}
