// libsystemc's own main() references sc_main; the test executables take their
// main() from gtest_main, so this definition only satisfies the linker.
extern "C" int sc_main(int, char**) { return 0; }
