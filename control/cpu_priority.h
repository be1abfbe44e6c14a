#pragma once

#include "core/status.h"

namespace sluice::control {

// Sets the nice value of every thread of this process. Linux keeps a nice value per thread and
// a new thread inherits its creator's, so calling this before starting the pipelines covers
// them all. Going below a thread's current value needs CAP_SYS_NICE: that is an error naming the
// value, and the threads keep what they had.
core::Status SetProcessNice(int nice);

}  // namespace sluice::control
