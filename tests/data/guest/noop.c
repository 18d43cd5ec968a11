/* Does nothing and passes: the warm per-test overhead in the benchmark. */
int main(void) { return 0; }
