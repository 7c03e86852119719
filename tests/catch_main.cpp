// The plain main of the test binaries; Catch2's implementation is catch_session.cpp.
#include "support/catch_session.hpp"

int main(int argc, char** argv) { return gcl_test::run_catch_session(argc, argv); }
