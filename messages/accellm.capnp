# accellm wire protocol: every message that crosses actors (docs/protocol.md).
#
# Rules (STYLE.md rule 3): every field is commented after it; fields are only
# ever appended with the next @N, never renumbered, retyped or removed. Every
# message about a request carries its requestId (0 is never a valid id); every
# cluster-level message (all but SubmitRequest) carries the sender's epoch so
# that messages from a fenced instance can be recognised. Instance ids are
# UInt32 with 0xFFFFFFFF meaning "no instance". Token ids are Int32 >= 0; -1
# means "no token" where a field says so. Times are nanoseconds of the actor
# clock (virtual time in `simulate`), durations likewise.
#
# On the wire a message is one Cap'n Proto flat array (segment table +
# segments), carried in CAF as capnp_blob {type, bytes}; `type` is the
# MsgType ordinal below, which the C++ enum messages::msg_type mirrors.

@0xd926ac87fdb70eb0;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("accellm::wire");

enum MsgType {  # the capnp_blob::type of each message (0 is never used)
  unused @0;           # placeholder so that SubmitRequest is 1
  submitRequest @1;    # SubmitRequest
  assignPrefill @2;    # AssignPrefill
  startDecode @3;      # StartDecode
  moveDecode @4;       # MoveDecode
  setRole @5;          # SetRole
  evictReplica @6;     # EvictReplica
  cancel @7;           # Cancel
  execute @8;          # Execute
  iterationDone @9;    # IterationDone
  kvLayer @10;         # KvLayer
  kvDelta @11;         # KvDelta
  tokenBatch @12;      # TokenBatch
  requestDone @13;     # RequestDone
  instanceReport @14;  # InstanceReport
  registerWorker @15;  # RegisterWorker
  heartbeat @16;       # Heartbeat
  traceEvent @17;      # TraceEvent
  kvDeltaBatch @18;    # KvDeltaBatch
  iterationReport @19; # IterationReport
  kvAck @20;           # KvAck
}

enum Role {  # what an instance runs
  prefill @0;  # prompts only (AcceLLM: one side of a pair)
  decode @1;   # token generation only
  mixed @2;    # both in one batch (vLLM-style baseline)
}

enum Phase {  # what a batch item computes
  prefill @0;  # prompt tokens (possibly one chunk of them)
  decode @1;   # one generated token
}

enum MoveReason {  # why a decode moves to another instance
  balance @0;     # load balancing inside a pair (the replica is complete)
  roleSwitch @1;  # the source becomes a prefill instance
  takeover @2;    # the source died or was fenced
  handoff @3;     # prefill instance -> decode instance (Splitwise: the KV was shipped there)
}

enum EvictReason {  # why replicas are dropped
  memoryPressure @0;  # the holder needs the blocks for primaries
  completed @1;       # the request finished
  repair @2;          # the replica is stale or inconsistent after a failure
  handedOff @3;       # the prefill instance's copy after decode moved elsewhere (Splitwise keeps none)
}

enum RequestStatus {  # outcome of a request
  ok @0;         # finished normally
  cancelled @1;  # cancelled by the client or the coordinator
  failed @2;     # could not be served (see RequestDone.error)
}

enum FinishReason {  # why generation ended
  none @0;          # it did not finish (status cancelled or failed)
  length @1;        # maxTokens tokens were generated
  stop @2;          # a stop token was generated
  contextLimit @3;  # the model's maximum context was reached
}

enum TraceKind {  # what a TraceEvent records
  message @0;        # one message envelope
  iterationSpan @1;  # one iteration of one instance
  logStart @2;       # first record of every log: its node and clock
  clockSample @3;    # a message carrying its sender's clock arrived
  logEnd @4;         # last record of a log closed in order
}

# client -> coordinator: a new inference request.
struct SubmitRequest {
  requestId @0 :UInt64;          # client-proposed id; 0 = the coordinator assigns one
  prompt @1 :List(Int32);        # prompt token ids; empty when only promptLen matters (simulation)
  promptLen @2 :UInt32;          # prompt length in tokens (>= 1; equals prompt's length if non-empty)
  maxTokens @3 :UInt32;          # most output tokens to generate (>= 1)
  arrivalNs @4 :UInt64;          # arrival time at the client (trace replay); 0 = on receipt
  stream @5 :Bool;               # send TokenBatch as tokens come; false = one batch at the end
  ttftMs @6 :UInt32;             # client SLO on time to first token in ms; 0 = none
  tbtMs @7 :UInt32;              # client SLO on time between tokens in ms; 0 = none
  stopTokens @8 :List(Int32);    # generation ends after any of these; empty = only maxTokens
}

# coordinator -> instance_manager: prefill a request here, copying KV to the partner.
struct AssignPrefill {
  epoch @0 :UInt64;                   # coordinator's epoch
  requestId @1 :UInt64;               # the request
  instance @2 :UInt32;                # the instance that prefills
  partner @3 :UInt32;                 # instance receiving the layer-wise KV copy; 0xFFFFFFFF = no replica
  prompt @4 :List(Int32);             # prompt tokens; empty on simulated devices
  promptLen @5 :UInt32;               # prompt length (>= 1; equals prompt's length if non-empty)
  alreadyGenerated @6 :List(Int32);   # output tokens produced before a takeover re-prefill; empty on sim
  alreadyGeneratedLen @7 :UInt32;     # their count (equals alreadyGenerated's length if non-empty)
  maxTokens @8 :UInt32;               # output budget of the request, including alreadyGenerated
  chunkTokens @9 :UInt32;             # chunked-prefill chunk size; 0 = the instance's default
  arrivalNs @10 :UInt64;              # when the request arrived (queue order)
  stopTokens @11 :List(Int32);        # the request's stop tokens
  thenDecode @12 :Bool;               # keep decoding here after prefill, without waiting for StartDecode
}

# coordinator -> instance_manager: start decoding a prefilled request here.
struct StartDecode {
  epoch @0 :UInt64;          # coordinator's epoch
  requestId @1 :UInt64;      # the request
  instance @2 :UInt32;       # the instance that decodes
  contextLen @3 :UInt32;     # tokens whose KV is cached (>= 1); lastToken is not among them
  lastToken @4 :Int32;       # the newest generated token, input of the next decode step
  fromReplica @5 :Bool;      # true: promote this instance's replica to primary
  generated @6 :UInt32;      # output tokens produced so far, lastToken included (>= 1)
  partner @7 :UInt32;        # instance keeping the redundant copy (receives KvDelta); 0xFFFFFFFF = none
  maxTokens @8 :UInt32;      # output budget of the request
  stopTokens @9 :List(Int32);  # the request's stop tokens
  contextTokens @10 :List(Int32);  # the context's token ids [0, contextLen) on real devices, which
                                   # the instance needs to recompute what its copy lacks; empty on sim
  takeover @11 :Bool;        # the instance that decoded it is gone: recompute what this instance's
                             # copy lacks (all of the context without a copy) at once, no waiting
}

# coordinator -> both instances: move a running decode (balance, role switch, takeover).
struct MoveDecode {
  epoch @0 :UInt64;           # coordinator's epoch
  requestId @1 :UInt64;       # the request
  fromInstance @2 :UInt32;    # where it decoded until now (dead on takeover)
  toInstance @3 :UInt32;      # where it decodes from now on; holds the replica
  contextLen @4 :UInt32;      # tokens whose KV the source had cached (>= 1)
  lastToken @5 :Int32;        # the newest generated token, input of the next decode step
  generated @6 :UInt32;       # output tokens produced so far, lastToken included
  reason @7 :MoveReason;      # why
  tailTokens @8 :List(Int32); # context tokens [contextLen - len, contextLen), to recompute the replica's lag
  newPartner @9 :UInt32;      # who keeps the redundant copy afterwards; 0xFFFFFFFF = none
  maxTokens @10 :UInt32;      # output budget of the request
  stopTokens @11 :List(Int32);  # the request's stop tokens
}

# coordinator -> instance_manager (also the answer to RegisterWorker): role and partner.
struct SetRole {
  epoch @0 :UInt64;     # coordinator's epoch (a RegisterWorker answer gives the worker its epoch)
  instance @1 :UInt32;  # the instance
  role @2 :Role;        # its role from now on
  partner @3 :UInt32;   # its pair partner from now on; 0xFFFFFFFF = unpaired
  fenced @4 :Bool;      # the coordinator declared this instance lost (a late message of it
                        # arrived): drop every request and copy, stop, and register again
}

# coordinator -> kv_replica: drop replicas.
struct EvictReplica {
  epoch @0 :UInt64;               # coordinator's epoch
  instance @1 :UInt32;            # the instance holding the replicas
  requestIds @2 :List(UInt64);    # requests whose replicas to drop (non-empty)
  reason @3 :EvictReason;         # why
}

# client -> coordinator -> instance_manager(s): stop a request.
struct Cancel {
  epoch @0 :UInt64;      # sender's epoch (0 from a client)
  requestId @1 :UInt64;  # the request
  reason @2 :Text;       # human-readable reason; may be empty
}

struct ExecuteItem {  # one request's share of an iteration
  requestId @0 :UInt64;      # the request
  phase @1 :Phase;           # prefill (chunk) or decode
  context @2 :UInt32;        # tokens of this request already in the KV cache
  numTokens @3 :UInt32;      # tokens this iteration appends (>= 1; 1 for decode)
  tokens @4 :List(Int32);    # the numTokens token ids; empty on simulated devices
  wantsOutput @5 :Bool;      # false for a non-final prefill chunk: no token is sampled
  replicaTo @6 :UInt32;      # stream this item's new KV to that instance; 0xFFFFFFFF = none
  steps @7 :UInt32 = 1;      # decode steps this item runs (>= 1; > 1 only for a decode: multi-step)
}

# instance_manager -> worker: run one iteration.
struct Execute {
  epoch @0 :UInt64;               # coordinator's epoch as known to the instance
  instance @1 :UInt32;            # the instance
  iteration @2 :UInt64;           # per-instance iteration counter
  items @3 :List(ExecuteItem);    # the batch (non-empty, each request at most once)
}

# worker -> instance_manager: an iteration finished (or failed).
struct IterationDone {
  epoch @0 :UInt64;               # echoed from Execute
  instance @1 :UInt32;            # the instance
  iteration @2 :UInt64;           # echoed from Execute
  durationNs @3 :UInt64;          # device time: measured, or modelled on sim
  nextTokens @4 :List(Int32);     # one per item in order; -1 where the item wanted no output
  error @5 :Text;                 # empty = ok; otherwise why no item advanced
  kvBytesSent @6 :UInt64;         # KV bytes this iteration streamed to partners
  steps @7 :UInt32 = 1;           # decode steps run (>= 1; fewer than asked when cut short)
  stepEndsNs @8 :List(UInt64);    # steps > 1: each step's end, ns after the start (ascending);
                                  # nextTokens then holds steps x items, step-major
  joined @9 :UInt32;              # multi-step: decodes that joined after the start (appended to
                                  # the items in the order the manager sent them)
  kvBytesShared @10 :UInt64;      # of kvBytesSent, the bytes that went through a same-node
                                  # shared ring rather than the network (<= kvBytesSent)
  refused @11 :List(ItemRefusal); # items the device would not run (ascending); the rest ran
  kvBytesCopied @12 :UInt64;      # of kvBytesSent, the bytes a device with a pinned host pool
                                  # had no room for there and copied out on its own thread
                                  # (<= kvBytesSent; 0 on devices without one)
  kvBytesDropped @13 :UInt64;     # KV bytes of layer groups such a device had no room for
                                  # and did not send: their copies were given up (not in
                                  # kvBytesSent)
}

struct ItemRefusal {  # one Execute item a device refused, alone (IterationDone.refused)
  item @0 :UInt32;    # its index in the Execute's items
  reason @1 :Text;    # why, in the device's words
}

# worker -> partner's kv_replica: one layer of a prefill's KV.
struct KvLayer {
  epoch @0 :UInt64;          # sender's epoch
  requestId @1 :UInt64;      # the request
  fromInstance @2 :UInt32;   # the prefilling instance
  layer @3 :UInt32;          # the layer
  tokenBegin @4 :UInt32;     # first token position of the slice
  tokenEnd @5 :UInt32;       # one past the last position (>= tokenBegin)
  sizeBytes @6 :UInt64;      # size of the slice on the wire (modelled on sim)
  data @7 :Data;             # K then V of the slice; empty on simulated devices
  lastLayer @8 :Bool;        # this is the last layer of the range [tokenBegin, tokenEnd)
}

# worker -> partner's kv_replica: KV of newly decoded tokens, all layers.
struct KvDelta {
  epoch @0 :UInt64;          # sender's epoch
  requestId @1 :UInt64;      # the request
  fromInstance @2 :UInt32;   # the decoding instance
  layerBegin @3 :UInt32;     # first layer
  layerEnd @4 :UInt32;       # one past the last layer (> layerBegin)
  tokenBegin @5 :UInt32;     # first token position
  tokenEnd @6 :UInt32;       # one past the last position (>= tokenBegin)
  sizeBytes @7 :UInt64;      # size on the wire (modelled on sim)
  data @8 :Data;             # per layer K then V; empty on simulated devices
}

# instance_manager -> coordinator -> client: generated tokens.
struct TokenBatch {
  epoch @0 :UInt64;          # sender's epoch
  requestId @1 :UInt64;      # the request
  firstIndex @2 :UInt32;     # index of tokens[0] in the request's output stream
  tokens @3 :List(Int32);    # the tokens (non-empty)
  instance @4 :UInt32;       # the instance that generated them
  timeNs @5 :UInt64;         # when the last of them was generated
}

# instance_manager -> coordinator -> client: a request ended.
struct RequestDone {
  epoch @0 :UInt64;              # sender's epoch
  requestId @1 :UInt64;          # the request
  status @2 :RequestStatus;      # outcome
  finishReason @3 :FinishReason; # why generation ended
  outputTokens @4 :UInt32;       # output tokens generated in total
  error @5 :Text;                # why it failed; empty unless status is failed
  instance @6 :UInt32;           # the instance that finished it; 0xFFFFFFFF = the coordinator
}

# instance_manager -> coordinator: periodic load and memory report.
struct InstanceReport {
  epoch @0 :UInt64;                # sender's epoch
  instance @1 :UInt32;             # the instance
  timeNs @2 :UInt64;               # when the report was taken
  role @3 :Role;                   # current role
  queuedPrefillTokens @4 :UInt64;  # prompt tokens waiting or in prefill
  runningDecode @5 :UInt32;        # requests in the decode set
  kvBlocksTotal @6 :UInt64;        # KV blocks of the instance
  primaryBlocks @7 :UInt64;        # blocks holding primaries
  replicaBlocks @8 :UInt64;        # blocks holding replicas (evictable)
  freeBlocks @9 :UInt64;           # free blocks (primary + replica + free <= total)
  kvBytesSent @10 :UInt64;         # KV bytes sent to the partner since start
  busyNs @11 :UInt64;              # device busy time since start
  iterations @12 :UInt64;          # iterations since start
  partner @13 :UInt32;             # current partner; 0xFFFFFFFF = none
  queuedRequests @14 :UInt32;      # requests waiting for prefill
  rejectedMessages @15 :UInt64;    # malformed or misaddressed messages dropped since start
  kvBytesShared @16 :UInt64;       # of kvBytesSent, through a same-node shared ring (<= it)
  kvBytesCopied @17 :UInt64;       # of kvBytesSent, copied out for want of pinned memory (<= it)
  kvBytesDropped @18 :UInt64;      # KV bytes not sent for want of pinned memory (copies given up)
}

# worker process -> coordinator: join (or rejoin) the cluster.
struct RegisterWorker {
  epoch @0 :UInt64;            # last epoch the worker knew; 0 on first join
  clusterToken @1 :Text;       # shared secret of the cluster (non-empty)
  instanceName @2 :Text;       # name from the cluster file (non-empty)
  device @3 :Text;             # "cpu", "sim:h100", "cuda:0", ... (non-empty)
  model @4 :Text;              # model catalogue key, e.g. "llama2-70b"
  tp @5 :UInt32;               # tensor-parallel degree (>= 1)
  kvBlocks @6 :UInt64;         # KV blocks the device holds (>= 1)
  blockTokens @7 :UInt32;      # tokens per block (>= 1)
  host @8 :Text;               # the worker's address as its partners reach it (name or IP)
  pid @9 :UInt32;              # process id
  kvBytesPerBlock @10 :UInt64; # bytes of one block over all layers
  protocolVersion @11 :UInt32; # messages::protocol_version of the worker's build
  kvPort @12 :UInt16;          # port where the worker's kv_replica is published on `host`
                               # (partners send KV rows there directly); 0 = none
}

# instance_manager -> coordinator: liveness beyond the transport's own checks.
struct Heartbeat {
  epoch @0 :UInt64;     # sender's epoch
  instance @1 :UInt32;  # the sender
  seq @2 :UInt64;       # increments by one per heartbeat
  sentNs @3 :UInt64;    # when it was sent
}

# tracer log record: one message envelope or one iteration span.
struct TraceEvent {
  epoch @0 :UInt64;          # epoch of the traced message or instance
  timeNs @1 :UInt64;         # when it was sent (message) or started (span)
  kind @2 :TraceKind;        # which of the two
  sender @3 :Text;           # sending actor, e.g. "coordinator", "im:3"
  receiver @4 :Text;         # receiving actor
  senderNode @5 :Text;       # node (process or simulated host) of the sender
  receiverNode @6 :Text;     # node of the receiver
  messageType @7 :UInt16;    # MsgType of the message; 0 = not a capnp message, or a span
  bytes @8 :UInt64;          # wire size of the message (KV sizes on sim)
  requestId @9 :UInt64;      # the request it concerns; 0 = none
  durationNs @10 :UInt64;    # length of the span (iterationSpan)
  prefillTokens @11 :UInt32; # prefill tokens in the iteration (iterationSpan)
  decodeRequests @12 :UInt32; # decode requests in the iteration (iterationSpan)
  role @13 :Role;            # role of the instance during the span
  instance @14 :UInt32;      # the instance of the span; 0xFFFFFFFF = none
  peerTimeNs @15 :UInt64;    # clockSample: the sender's clock when it sent; logStart: wall clock (ns since 1970) at timeNs
  note @16 :Text;            # logStart: the clock ("virtual" or "steady"); logEnd: why it ended; message: what the envelope does not say (docs/tracing.md)
  dropped @17 :UInt64;       # logEnd: events dropped because the writer fell behind
}

struct KvRows {  # one request's share of a KvDeltaBatch
  requestId @0 :UInt64;      # the request
  tokenBegin @1 :UInt32;     # first token position
  tokenEnd @2 :UInt32;       # one past the last position (> tokenBegin)
  sizeBytes @3 :UInt64;      # size on the wire (modelled on sim)
  data @4 :Data;             # per layer K then V; empty on simulated devices
  ringPos @5 :UInt64;        # with KvDeltaBatch.ring: the bytes' position in that ring
}

# worker -> a kv_replica: the new KV rows of several requests, for one layer
# range. Decode steps sync one row per request per iteration in one message;
# on simulated devices a prefill's layer-wise copy, whose per-layer pipeline
# the worker models, arrives as one message covering every layer. A real
# device sends an iteration that holds a prompt one message per layer, each
# as soon as that layer is computed; rows count as copied once the message
# that ends at the last layer arrives (same sender, so in order).
struct KvDeltaBatch {
  epoch @0 :UInt64;          # sender's epoch
  fromInstance @1 :UInt32;   # the instance that computed the rows
  layerBegin @2 :UInt32;     # first layer
  layerEnd @3 :UInt32;       # one past the last layer (> layerBegin)
  rows @4 :List(KvRows);     # non-empty; each request at most once
  phase @5 :Phase;           # prefill: a prompt (chunk) copy; decode: decode-step rows
  ring @6 :UInt64;           # 0: none. Else the id of the sender's shared ring (a
                             # partner on the same node, worker/kv_ring_link.hpp): a
                             # row with empty data and sizeBytes > 0 lies there at its
                             # ringPos (a row that did not fit the ring carries data)
  abandoned @7 :List(UInt64); # requests whose copy the sender gave up from here on (its
                             # send queue to this receiver was full, docs/protocol.md
                             # "KV flow control"): the receiver drops what it holds of
                             # them. With entries, rows may be empty
}

struct TokenRun {  # consecutive output tokens of one request from one iteration
  requestId @0 :UInt64;   # the request
  firstIndex @1 :UInt32;  # output-stream index of its first token (0 = the request's first token)
  count @2 :UInt32;       # tokens in the run (>= 1; 1 unless the iteration ran several steps)
  firstStep @3 :UInt32;   # the step that made its first token; the others come one step apart
}

# instance_manager -> coordinator: after every iteration, what it produced and
# the instance's state afterwards (the coordinator's view and request table
# are kept from these).
struct IterationReport {
  epoch @0 :UInt64;                    # sender's epoch
  instance @1 :UInt32;                 # the instance
  iteration @2 :UInt64;                # per-instance iteration counter
  startNs @3 :UInt64;                  # when the iteration started
  durationNs @4 :UInt64;               # how long it ran
  role @5 :Role;                       # role during the iteration
  prefillTokens @6 :UInt32;            # prompt tokens in the batch
  decodeRequests @7 :UInt32;           # decode steps in the batch
  runs @8 :List(TokenRun);             # the tokens produced, a run per request, in batch order
  load @9 :InstanceReport;             # state after the iteration
  evictedReplicas @10 :List(UInt64);   # replicas dropped here under memory pressure since the last report
  preempted @11 :List(UInt64);         # requests preempted here (KV freed, queued for recompute)
  stepEndsNs @12 :List(UInt64);        # multi-step: each step's end after startNs (a token was made
                                       # at startNs + stepEndsNs[step]); empty = one step
  tokens @13 :List(Int32);             # the token ids of the runs, run after run
}

# kv_replica -> the worker that sent it KvDeltaBatch messages: they arrived.
# The credit of the KV flow control (worker/kv_send_queue.hpp): a worker
# keeps at most a window of unacknowledged KV bytes on the way to each
# receiver, so that a burst of KV never delays its heartbeats.
struct KvAck {
  epoch @0 :UInt64;    # sender's epoch (a kv_replica knows none: 0)
  batches @1 :UInt32;  # KvDeltaBatch messages from that worker taken since the last KvAck (>= 1)
}
