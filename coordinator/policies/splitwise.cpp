#include "coordinator/policies/splitwise.hpp"

#include <algorithm>
#include <string>
#include <tuple>

namespace accellm::coordinator {
namespace {

const char* label(std::uint8_t p) {
  static const char* const names[] = {"prompt", "token", "mixed"};
  return names[p];
}

}  // namespace

std::string splitwise_policy::setting() const {
  return "prompt:token " + std::to_string(prompt_instances_) + ":" +
         std::to_string(instances_ - prompt_instances_);
}

void splitwise_policy::init(cluster_view& view) {
  instances_ = static_cast<std::uint32_t>(view.instances.size());
  if (prompt_instances_ == 0 || prompt_instances_ >= instances_) {
    prompt_instances_ = instances_ > 1 ? (instances_ + 1) / 2 : 1;
  }
  pool_.assign(instances_, pool::token);
  for (std::uint32_t i = 0; i < prompt_instances_ && i < instances_; ++i) pool_[i] = pool::prompt;
  home_ = pool_;
  for (instance_view& inst : view.instances) {
    const pool p = pool_[inst.id];
    inst.role = p == pool::prompt ? messages::role::prefill : messages::role::decode;
    inst.partner = no_instance;
    inst.pool = label(static_cast<std::uint8_t>(p));
  }
}

void splitwise_policy::join(cluster_view& view, instance_id i) {
  instances_ = static_cast<std::uint32_t>(view.instances.size());
  const auto prompts =
      static_cast<std::uint32_t>(std::count(home_.begin(), home_.end(), pool::prompt));
  const std::uint32_t share = wanted_prompt_ != 0 ? wanted_prompt_ : (instances_ + 1) / 2;
  const pool p = prompts < share ? pool::prompt : pool::token;
  pool_.resize(instances_, p);
  home_.resize(instances_, p);
  prompt_instances_ = prompts + (p == pool::prompt ? 1 : 0);
  instance_view& inst = view.at(i);
  inst.role = p == pool::prompt ? messages::role::prefill : messages::role::decode;
  inst.partner = no_instance;
  inst.pool = label(static_cast<std::uint8_t>(p));
}

// SplitwiseSim: fewest pending prompt tokens; an instance with a non-empty
// queue is saturated when the new prompt would push it past the limit.
instance_id splitwise_policy::pick_prompt(const cluster_view& view, const request_view& r) const {
  instance_id best = no_instance;
  std::tuple<std::uint64_t, instance_id> best_key{};
  for (const instance_view& inst : view.instances) {
    if (!inst.alive || pool_[inst.id] == pool::token) continue;
    if (inst.pending_prefills > 0 && inst.pending_prefill_tokens + r.prompt_len > max_pending_) {
      continue;
    }
    const std::tuple key{inst.pending_prefill_tokens, inst.id};
    if (best == no_instance || key < best_key) {
      best = inst.id;
      best_key = key;
    }
  }
  return best;
}

// Least KV memory in use, among instances with room for the whole request.
instance_id splitwise_policy::pick_token(const cluster_view& view, const request_view& r) const {
  const std::uint64_t need = view.blocks_for(std::uint64_t{r.prompt_len} + r.max_tokens);
  instance_id best = no_instance;
  std::tuple<std::uint64_t, instance_id> best_key{};
  for (const instance_view& inst : view.instances) {
    if (!inst.alive || pool_[inst.id] == pool::prompt) continue;
    const std::uint64_t available = inst.available_blocks(view.block_tokens);
    if (available < need) continue;
    const std::tuple key{inst.total_blocks - available, inst.id};
    if (best == no_instance || key < best_key) {
      best = inst.id;
      best_key = key;
    }
  }
  return best;
}

instance_id splitwise_policy::least_loaded(const cluster_view& view, pool from) const {
  return view.least_loaded(
      [this, from](const instance_view& inst) { return pool_[inst.id] == from; });
}

set_role_d splitwise_policy::borrow(instance_id i) {
  pool_[i] = pool::mixed;
  return set_role_d{.instance = i, .role = messages::role::mixed, .pool = "mixed"};
}

decisions splitwise_policy::on_arrival(const cluster_view& view, const request_view& r) {
  decisions out;
  instance_id prompt = pick_prompt(view, r);
  if (prompt == no_instance) {
    prompt = least_loaded(view, pool::token);
    if (prompt != no_instance) out.push_back(borrow(prompt));
  }
  instance_id token = pick_token(view, r);
  if (token == no_instance) {
    token = least_loaded(view, pool::prompt);
    if (token != no_instance) out.push_back(borrow(token));
  }
  if (prompt == no_instance || token == no_instance) {
    // Nothing fits: both phases on the least loaded instance of any pool.
    const instance_id any = prompt != no_instance ? prompt : token;
    prompt = token = any != no_instance ? any : least_loaded(view, pool::mixed);
  }
  token_of_[r.id] = token;
  out.push_back(assign_prefill_d{.request = r.id,
                                 .instance = prompt,
                                 .copy_to = token != prompt ? token : no_instance,
                                 .then_decode = token == prompt});
  return out;
}

decisions splitwise_policy::on_prefill_done(const cluster_view&, const request_view& r) {
  const auto it = token_of_.find(r.id);
  const instance_id token = it != token_of_.end() ? it->second : r.prefill_instance;
  if (it != token_of_.end()) token_of_.erase(it);
  if (token == r.prefill_instance || r.replica_instance != token) {
    return {decode_here_d{.request = r.id, .replica = no_instance}};
  }
  return {move_decode_d{
      .request = r.id, .to = token, .reason = messages::move_reason::handoff, .keep_copy = false}};
}

// A borrowed instance goes home once it has nothing left to do.
decisions splitwise_policy::on_report(const cluster_view& view, instance_id i) {
  if (pool_[i] != pool::mixed || home_[i] == pool::mixed || !view.at(i).idle()) return {};
  pool_[i] = home_[i];
  const bool prompt = home_[i] == pool::prompt;
  return {set_role_d{.instance = i,
                     .role = prompt ? messages::role::prefill : messages::role::decode,
                     .pool = prompt ? "prompt" : "token"}};
}

}  // namespace accellm::coordinator
