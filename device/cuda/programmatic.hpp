// programmatic.hpp: whether this thread's kernel launches use programmatic
// dependent launch (launch.cuh). A per-thread setting, so that it follows
// the backend's device thread and nothing else; C++17, for .cu files too.
#pragma once

#include "common/result.hpp"

#include <cuda_runtime_api.h>

namespace accellm::device::cuda {

/// Whether the kernels of a forward pass launched on this thread use
/// programmatic dependent launch (launch.cuh): false unless a
/// programmatic_launch_scope on this thread says otherwise.
bool programmatic_launch() noexcept;

/// Sets programmatic_launch() for this thread until it is destroyed, then
/// restores what it was. The backend holds one around an iteration's
/// launches (its device thread makes all of them), so that launches from
/// anywhere else stay plain.
class programmatic_launch_scope {
 public:
  explicit programmatic_launch_scope(bool on) noexcept;
  ~programmatic_launch_scope();
  programmatic_launch_scope(const programmatic_launch_scope&) = delete;
  programmatic_launch_scope& operator=(const programmatic_launch_scope&) = delete;

 private:
  bool previous_;
};

/// Whether programmatic launches work on the current device and stream `s`:
/// a kernel launched programmatically behind another reads what that one
/// wrote, queued directly and replayed from a captured graph. Fails with
/// invalid_argument before compute capability 9.0 and device_failure when
/// the launches are refused or read the wrong values (errors cleared). The
/// backend runs it once and launches plainly when it fails.
status programmatic_launch_works(cudaStream_t s);

}  // namespace accellm::device::cuda
