#pragma once
// The Catch2 session of a test binary's own main (the implementation: tests/catch_session.cpp).
namespace gcl_test {
// Runs every test case selected by the command line; returns the number of failures (capped).
int run_catch_session(int argc, char** argv);
}  // namespace gcl_test
