// The pinniped program as one translation unit with cpp-httplib's definitions
// (the half tools/fetch-httplib.sh splits off its header): the optimizer sees
// both, as it did before the split, and the shipped binary keeps the speed and
// size of a whole-header build. The tests and the benchmarks link
// libhttplib.a instead.
#include "main.cpp"
#include "httplib.cc"
