#include "coordinator/policies/accellm.hpp"

#include <algorithm>
#include <string>
#include <tuple>

namespace accellm::coordinator {
namespace {

using messages::role;

// Decode load of an instance: requests, then their context tokens.
std::tuple<std::uint32_t, std::uint64_t> decode_load(const instance_view& inst) {
  return {inst.decode_requests + inst.parked, inst.decode_tokens};
}

bool can_take_prompt(const instance_view& inst, const instance_view* partner) {
  if (!inst.alive) return false;
  if (inst.role == role::prefill || inst.decode_requests == 0) return true;
  if (partner == nullptr || !partner->alive) return true;  // unpaired: it must do both
  if (partner->role == role::prefill) return false;        // the pair already has a prefiller
  return decode_load(inst) <= decode_load(*partner);       // the lighter decoder switches
}

// The first live instance other than `except` without a partner, or no_instance.
instance_id first_unpaired(const cluster_view& view, instance_id except) {
  for (const instance_view& other : view.instances) {
    if (other.id != except && other.alive && other.partner == no_instance) return other.id;
  }
  return no_instance;
}

// `i` pairs with `mate` and takes its pair's label.
void pair_with(cluster_view& view, instance_id i, instance_id mate) {
  view.at(i).partner = mate;
  view.at(mate).partner = i;
  view.at(i).pool = view.at(mate).pool;
}

}  // namespace

void accellm_policy::init(cluster_view& view) {
  const auto n = static_cast<instance_id>(view.instances.size());
  for (instance_view& inst : view.instances) {
    const instance_id mate = inst.id ^ 1u;
    inst.partner = mate < n ? mate : no_instance;
    inst.role = role::decode;
    inst.pool = "pair" + std::to_string(inst.id / 2);
  }
}

// The newcomer pairs with instance i ^ 1 when that one is alive and
// unpaired (instances joining in order form the pairs init() would), else
// with the first live instance left unpaired (one whose partner was lost).
void accellm_policy::join(cluster_view& view, instance_id i) {
  instance_view& inst = view.at(i);
  inst.role = role::decode;
  inst.partner = no_instance;
  inst.pool = "pair" + std::to_string(i / 2);
  const instance_id twin = i ^ 1u;
  const bool twin_single =
      twin < view.instances.size() && view.at(twin).alive && view.at(twin).partner == no_instance;
  const instance_id mate = twin_single ? twin : first_unpaired(view, i);
  if (mate != no_instance) pair_with(view, i, mate);  // the pair keeps its label
}

void accellm_policy::leave(cluster_view& view, instance_id gone) {
  const instance_id orphan = view.at(gone).partner;
  view.unpair(gone);
  if (orphan == no_instance || !view.at(orphan).alive) return;
  if (const instance_id other = first_unpaired(view, orphan); other != no_instance) {
    pair_with(view, orphan, other);
  }
}

instance_id accellm_policy::pick_prefill(const cluster_view& view, const request_view& r,
                                         bool saturated) const {
  const std::uint64_t need = view.blocks_for(r.prompt_len);
  instance_id best = no_instance;
  std::tuple<bool, std::uint64_t, std::uint32_t, std::uint64_t, std::uint64_t> best_key{};
  for (const instance_view& inst : view.instances) {
    const instance_view* partner = inst.partner != no_instance ? &view.at(inst.partner) : nullptr;
    if (!inst.alive || (!saturated && !can_take_prompt(inst, partner))) continue;
    const auto [reqs, tokens] = decode_load(inst);
    // Ties go to the member that prefilled least recently, so an idle pair
    // takes turns: each prompt's decode lands on the other member, and both
    // decode (a hot spare, not a fixed prefill/decode split).
    const std::tuple key{inst.available_blocks(view.block_tokens) < need,
                         inst.pending_prefill_tokens, reqs, tokens, inst.last_assigned};
    if (best == no_instance || key < best_key) {
      best = inst.id;
      best_key = key;
    }
  }
  return best;
}

// `i` prefills from now on; its decodes continue on its partner, which holds
// their replicas, unless the partner prefills too (then they stay and the
// instance alternates prefill and decode iterations).
void accellm_policy::switch_to_prefill(const cluster_view& view, instance_id i, decisions& out) {
  const instance_view& inst = view.at(i);
  if (inst.role != role::prefill) {
    out.push_back(set_role_d{.instance = i, .role = role::prefill, .pool = nullptr});
  }
  if (inst.decode_requests == 0 || inst.partner == no_instance) return;
  const instance_view& mate = view.at(inst.partner);
  if (!mate.alive || mate.role == role::prefill) return;
  for (const request_id id : inst.decoding) {
    const request_view& r = view.requests.at(id);
    if (r.phase != request_phase::decoding || r.decode_instance != i) continue;
    if (r.replica_instance != inst.partner) continue;  // no copy there: it stays and alternates
    out.push_back(move_decode_d{.request = id,
                                .to = inst.partner,
                                .reason = messages::move_reason::role_switch,
                                .keep_copy = true});
  }
}

decisions accellm_policy::on_arrival(const cluster_view& view, const request_view& r) {
  decisions out;
  instance_id p = pick_prefill(view, r, false);
  // Every allowed prefiller is saturated (SplitwiseSim's prompt limit): let
  // the other member of a pair prefill too rather than queue without bound.
  if (p == no_instance || (view.at(p).pending_prefills > 0 &&
                           view.at(p).pending_prefill_tokens + r.prompt_len > max_pending_)) {
    const instance_id any = pick_prefill(view, r, true);
    if (any != no_instance) p = any;
  }
  if (p == no_instance) p = 0;  // every instance is dead: the coordinator fails the request
  const instance_view& inst = view.at(p);
  switch_to_prefill(view, p, out);
  instance_id copy_to = no_instance;
  if (inst.partner != no_instance) {
    const instance_view& mate = view.at(inst.partner);
    if (mate.alive && mate.available_blocks(view.block_tokens) >= view.blocks_for(r.prompt_len)) {
      copy_to = mate.id;
    }
  }
  out.push_back(
      assign_prefill_d{.request = r.id, .instance = p, .copy_to = copy_to, .then_decode = false});
  return out;
}

decisions accellm_policy::on_prefill_done(const cluster_view& view, const request_view& r) {
  const instance_id p = r.prefill_instance;
  const instance_id q = r.replica_instance;
  if (q == no_instance || !view.at(q).alive) return {decode_here_d{.request = r.id}};
  const instance_view& here = view.at(p);
  const bool here_busy = here.role == role::prefill && here.pending_prefills > 0;
  const bool mate_busy = view.at(q).role == role::prefill && view.at(q).pending_prefills > 0;
  bool go = here_busy && !mate_busy;
  if (!here_busy && !mate_busy) go = decode_load(view.at(q)) < decode_load(here);
  if (!go) return {decode_here_d{.request = r.id, .replica = q}};
  return {move_decode_d{
      .request = r.id, .to = q, .reason = messages::move_reason::balance, .keep_copy = true}};
}

// Moves the youngest decodes of `from` to its partner until the two are even.
void accellm_policy::rebalance(const cluster_view& view, instance_id from, decisions& out) {
  const instance_view& a = view.at(from);
  if (a.partner == no_instance) return;
  const instance_view& b = view.at(a.partner);
  if (!b.alive || b.role != role::decode || a.role != role::decode) return;
  const std::uint32_t na = a.decode_requests;
  const std::uint32_t nb = b.decode_requests;
  // New decodes already go to the lighter side; running ones move only when
  // the pair is far out of balance: every move costs its request about a
  // step, and a decode step's time grows slowly with the batch (the weights
  // dominate it), so evening out small differences costs more than it saves.
  // (With a slack of 8, a busy pair moved its decodes back and forth: 12
  // moves per request on conv at 30 req/s on 4 H100 instances, a TBT p99 of
  // 26 ms against 16 ms with this slack.)
  const std::uint32_t slack = std::max(rebalance_slack, nb);
  if (na <= nb + slack) return;
  std::uint32_t to_move = (na - nb) / 2;
  for (auto it = a.decoding.rbegin(); it != a.decoding.rend() && to_move > 0; ++it) {
    const request_view& r = view.requests.at(*it);
    if (r.phase != request_phase::decoding || r.decode_instance != from) continue;
    if (r.replica_instance != b.id) continue;
    out.push_back(move_decode_d{
        .request = r.id, .to = b.id, .reason = messages::move_reason::balance, .keep_copy = true});
    --to_move;
  }
}

decisions accellm_policy::on_report(const cluster_view& view, instance_id i) {
  decisions out;
  const instance_view& inst = view.at(i);
  if (!inst.alive) return out;
  if (inst.role == role::prefill && inst.pending_prefills == 0) {
    out.push_back(set_role_d{.instance = i, .role = role::decode, .pool = nullptr});
    return out;  // the partner rebalances towards it on its next report
  }
  rebalance(view, i, out);
  return out;
}

}  // namespace accellm::coordinator
