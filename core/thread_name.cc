#include "core/thread_name.h"

#include <pthread.h>

namespace sluice::core {

std::string ThreadName(std::string_view role, std::string_view subject) {
  std::string name(role);
  if (!subject.empty()) {
    name += ':';
    name += subject;
  }
  if (name.size() <= kMaxThreadNameBytes) return name;
  size_t cut = kMaxThreadNameBytes;
  // Back up over UTF-8 continuation bytes (10xxxxxx) to the start of the character cut in two.
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  name.resize(cut);
  return name;
}

void NameCurrentThread(std::string_view role, std::string_view subject) {
  (void)pthread_setname_np(pthread_self(), ThreadName(role, subject).c_str());
}

std::string CurrentThreadName() {
  char name[kMaxThreadNameBytes + 1] = {};
  if (pthread_getname_np(pthread_self(), name, sizeof name) != 0) return {};
  return name;
}

}  // namespace sluice::core
