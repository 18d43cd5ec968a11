/* A guest test that does not compile: the harness must report the compiler's message. */
int main(void) { return undeclared_symbol; }
