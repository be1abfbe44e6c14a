#include <cstdio>

int main() {
  std::puts("sluice: not yet");
  return 0;
}
