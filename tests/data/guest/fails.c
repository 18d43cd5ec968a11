/* Fails with a KTAP "not ok" and a diagnostic that the report must show. */
#include <stdio.h>

int main(void)
{
	printf("TAP version 13\n1..2\nok 1 - first\n# expected 42, got 41\nnot ok 2 - answer\n");
	return 1;
}
