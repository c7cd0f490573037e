// instance_host: the actors of one instance in a worker process (DESIGN.md
// "Actors"): its instance_manager, its kv_replica, and the worker that drives
// its device, a real one (cpu, cuda:N: device_worker) or a cost model
// (sim:*: the simulator's sim_worker, running on the real clock), wired to
// each other and to the coordinator.
//
// The manager starts without an instance id: it takes the one the
// coordinator gives it in its first SetRole (a daemon registers first). KV
// rows from partners arrive at the kv_replica, which hands them to the
// manager; on a real device the manager forwards the rows it keeps to the
// device worker, so the device holds exactly the KV the manager accounts for.
//
// Thread contract: spawn_instance is called by main() before the actors get
// messages; the handles are plain values afterwards.
#pragma once

#include "actors/tracer.hpp"
#include "common/result.hpp"
#include "config/cluster_config.hpp"
#include "device/backend.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <memory>
#include <string>
#include <vector>

namespace accellm::daemon {

/// A worker's device, ready to host: a real backend, or a sim:* cost model.
struct device_choice {
  std::string name;                                     ///< "cpu", "cuda:0", "sim:h100", ...
  std::unique_ptr<device::backend> backend;             ///< real devices
  std::shared_ptr<const device::sim::cost_model> cost;  ///< sim:* devices
  device::kv_geometry kv;
  const device::model_spec* model = nullptr;  ///< never null in a valid choice
  /// What a real device chose at start-up, a line each, for the worker's
  /// log (cuda_backend::describe_setup); empty for the others.
  std::vector<std::string> setup;
};

/// Builds the device `name` for the cluster's model: "cpu" (the small real
/// model; weights from seed 1, the same on every worker), "cuda:N" (when the
/// build has CUDA) or a sim:* cost model at the cluster's tp. Errors name the
/// device and why it cannot host the model.
result<device_choice> make_device(const std::string& name, const config::cluster_config& c);

struct instance_actors {
  caf::actor manager;
  caf::actor replica;
  caf::actor worker;
  /// For shutdown: every actor of the instance.
  std::vector<caf::actor> all() const { return {manager, replica, worker}; }
};

/// Spawns and wires the instance's actors; `coordinator` gets its reports.
/// `trace` (may be empty) is this worker's point of the message trace: its
/// node is used, the actor names are the instance's ("im:<id>", ...).
instance_actors spawn_instance(caf::actor_system& sys, const config::cluster_config& c,
                               device_choice dev, const caf::actor& coordinator,
                               const actors::trace_point& trace = {});

}  // namespace accellm::daemon
