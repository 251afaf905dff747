// Numbers from libvirt's wire contract (src/remote/remote_protocol.x, src/remote/qemu_protocol.x,
// src/rpc/virkeepaliveprotocol.x) and the public flag enums from include/libvirt/libvirt-domain.h
// and libvirt-qemu.h. These are ABI: never renumber.

export const REMOTE_PROGRAM = 0x20008086;
export const REMOTE_PROTOCOL_VERSION = 1;
/** libvirt-qemu's program: QEMU-specific calls (guest agent pass-through) on the same socket. */
export const QEMU_PROGRAM = 0x20008087;
export const QEMU_PROTOCOL_VERSION = 1;
export const KEEPALIVE_PROGRAM = 0x6b656570;
export const KEEPALIVE_PROTOCOL_VERSION = 1;

export enum KeepaliveProcedure {
  Ping = 1,
  Pong = 2,
}

/** Limits from remote_protocol.x, applied when decoding replies. */
export const REMOTE_STRING_MAX = 4194304;
export const REMOTE_DOMAIN_LIST_MAX = 16384;
export const REMOTE_DOMAIN_BLOCK_COPY_PARAMETERS_MAX = 16;
export const REMOTE_DOMAIN_FSFREEZE_MOUNTPOINTS_MAX = 256;
export const REMOTE_DOMAIN_JOB_STATS_MAX = 64;
export const REMOTE_DOMAIN_CHECKPOINT_LIST_MAX = 16384;
export const VIR_UUID_BUFLEN = 16;

/** REMOTE_PROC_* numbers for the procedures this client speaks. */
export enum Procedure {
  ConnectOpen = 1,
  ConnectClose = 2,
  ConnectGetType = 3,
  ConnectGetVersion = 4,
  DomainDefineXML = 11,
  DomainDestroy = 12,
  DomainGetXMLDesc = 14,
  DomainGetInfo = 16,
  DomainLookupByName = 23,
  DomainLookupByUUID = 24,
  DomainResume = 28,
  DomainSuspend = 34,
  ConnectGetHostname = 59,
  ConnectSupportsFeature = 60,
  AuthList = 66,
  AuthPolkit = 70,
  ConnectGetLibVersion = 157,
  DomainAttachDeviceFlags = 160,
  DomainDetachDeviceFlags = 161,
  DomainGetJobInfo = 163,
  DomainAbortJob = 164,
  DomainManagedSave = 182,
  DomainHasManagedSaveImage = 183,
  DomainGetBlockInfo = 194,
  DomainCreateWithFlags = 196,
  DomainGetState = 212,
  DomainUndefineFlags = 231,
  DomainBlockJobAbort = 237,
  DomainGetBlockJobInfo = 238,
  DomainEventBlockJob = 241,
  DomainBlockRebase = 266,
  ConnectListAllDomains = 273,
  DomainGetJobStats = 298,
  ConnectDomainEventCallbackRegisterAny = 316,
  ConnectDomainEventCallbackDeregisterAny = 317,
  DomainEventCallbackLifecycle = 318,
  DomainEventCallbackBlockJob = 326,
  DomainFSFreeze = 335,
  DomainFSThaw = 336,
  DomainEventBlockJob2 = 339,
  DomainBlockCopy = 345,
  DomainCheckpointCreateXML = 411,
  DomainCheckpointGetXMLDesc = 412,
  DomainListAllCheckpoints = 413,
  DomainCheckpointListAllChildren = 414,
  DomainCheckpointLookupByName = 415,
  DomainCheckpointGetParent = 416,
  DomainCheckpointDelete = 417,
  DomainAgentSetResponseTimeout = 420,
  DomainBackupBegin = 421,
  DomainBackupGetXMLDesc = 422,
  /** libvirt >= 8.5; older daemons answer it with VIR_ERR_NO_SUPPORT */
  DomainAbortJobFlags = 442,
}

export function procedureName(proc: number): string {
  return Procedure[proc] ?? `procedure ${proc}`;
}

/** QEMU_PROC_* numbers (qemu_protocol.x) for the procedures this client speaks. */
export enum QemuProcedure {
  DomainAgentCommand = 3,
}

/**
 * A program the client calls, with the version it speaks. Each call names one, and its reply must
 * come back under the same one: the procedure numbers of different programs overlap.
 */
export interface RpcProgram {
  readonly program: number;
  readonly version: number;
  procedureName(proc: number): string;
}

export const REMOTE_RPC: RpcProgram = { program: REMOTE_PROGRAM, version: REMOTE_PROTOCOL_VERSION, procedureName };

export const QEMU_RPC: RpcProgram = {
  program: QEMU_PROGRAM,
  version: QEMU_PROTOCOL_VERSION,
  procedureName: (proc) => (QemuProcedure[proc] !== undefined ? `Qemu${QemuProcedure[proc]}` : `qemu procedure ${proc}`),
};

/** Programs whose calls this client makes; a packet from any other program is a protocol error. */
export const CALLABLE_PROGRAMS: readonly RpcProgram[] = [REMOTE_RPC, QEMU_RPC];

/** remote_auth_type */
export enum AuthType {
  None = 0,
  Sasl = 1,
  Polkit = 2,
}
export const REMOTE_AUTH_TYPE_LIST_MAX = 20;

/** VIR_DRV_FEATURE_PROGRAM_KEEPALIVE: asking for it makes the daemon start pinging us. */
export const VIR_DRV_FEATURE_PROGRAM_KEEPALIVE = 10;

/** virConnectFlags */
export const VIR_CONNECT_RO = 1;

/** virDomainState */
export enum DomainState {
  NoState = 0,
  Running = 1,
  Blocked = 2,
  Paused = 3,
  Shutdown = 4,
  Shutoff = 5,
  Crashed = 6,
  PMSuspended = 7,
}

/** virDomainCreateFlags */
export const VIR_DOMAIN_NONE = 0;
export const VIR_DOMAIN_START_PAUSED = 1;
export const VIR_DOMAIN_START_AUTODESTROY = 2;
export const VIR_DOMAIN_START_BYPASS_CACHE = 4;
export const VIR_DOMAIN_START_FORCE_BOOT = 8;

/** virDomainXMLFlags */
export const VIR_DOMAIN_XML_SECURE = 1;
export const VIR_DOMAIN_XML_INACTIVE = 2;
export const VIR_DOMAIN_XML_UPDATE_CPU = 4;
export const VIR_DOMAIN_XML_MIGRATABLE = 8;

/** virDomainUndefineFlagsValues */
export const VIR_DOMAIN_UNDEFINE_MANAGED_SAVE = 1;
export const VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA = 2;
export const VIR_DOMAIN_UNDEFINE_NVRAM = 4;
export const VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA = 16;

/** virConnectListAllDomainsFlags */
export const VIR_CONNECT_LIST_DOMAINS_ACTIVE = 1;
export const VIR_CONNECT_LIST_DOMAINS_INACTIVE = 2;
export const VIR_CONNECT_LIST_DOMAINS_PERSISTENT = 4;
export const VIR_CONNECT_LIST_DOMAINS_TRANSIENT = 8;
export const VIR_CONNECT_LIST_DOMAINS_RUNNING = 16;
export const VIR_CONNECT_LIST_DOMAINS_PAUSED = 32;
export const VIR_CONNECT_LIST_DOMAINS_SHUTOFF = 64;
export const VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE = 256;

/** virDomainModificationImpact / virDomainDeviceModifyFlags */
export const VIR_DOMAIN_AFFECT_CURRENT = 0;
export const VIR_DOMAIN_AFFECT_LIVE = 1;
export const VIR_DOMAIN_AFFECT_CONFIG = 2;

/**
 * virDomainQemuAgentCommandTimeoutValues: the `timeout` of virDomainQemuAgentCommand, in seconds,
 * or one of these. DEFAULT is libvirt's 5 s; BLOCK waits for as long as the agent takes.
 */
export const VIR_DOMAIN_QEMU_AGENT_COMMAND_MIN = -2;
export const VIR_DOMAIN_QEMU_AGENT_COMMAND_BLOCK = -2;
export const VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT = -1;
export const VIR_DOMAIN_QEMU_AGENT_COMMAND_NOWAIT = 0;
export const VIR_DOMAIN_QEMU_AGENT_COMMAND_SHUTDOWN = 60;

/** virDomainAgentResponseTimeoutValues: the per-domain timeout libvirt applies to its own agent calls (fsfreeze, ...). */
export const VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_BLOCK = -2;
export const VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_DEFAULT = -1;
export const VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_NOWAIT = 0;

/** virDomainBlockJobType */
export enum BlockJobType {
  Unknown = 0,
  Pull = 1,
  Copy = 2,
  Commit = 3,
  ActiveCommit = 4,
  Backup = 5,
}

/** virConnectDomainEventBlockJobStatus */
export enum BlockJobStatus {
  Completed = 0,
  Failed = 1,
  Canceled = 2,
  Ready = 3,
}

/** virDomainBlockJobAbortFlags */
export const VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC = 1;
export const VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT = 2;

/** virDomainBlockJobInfoFlags */
export const VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES = 1;

/** virDomainBlockRebaseFlags (Nova's live snapshot path uses SHALLOW|REUSE_EXT|COPY). */
export const VIR_DOMAIN_BLOCK_REBASE_SHALLOW = 1;
export const VIR_DOMAIN_BLOCK_REBASE_REUSE_EXT = 2;
export const VIR_DOMAIN_BLOCK_REBASE_COPY_RAW = 4;
export const VIR_DOMAIN_BLOCK_REBASE_COPY = 8;
export const VIR_DOMAIN_BLOCK_REBASE_RELATIVE = 16;
export const VIR_DOMAIN_BLOCK_REBASE_COPY_DEV = 32;
export const VIR_DOMAIN_BLOCK_REBASE_BANDWIDTH_BYTES = 64;

/** virDomainBlockCopyFlags (Nova: SHALLOW|REUSE_EXT|TRANSIENT_JOB for persistent domains). */
export const VIR_DOMAIN_BLOCK_COPY_SHALLOW = 1;
export const VIR_DOMAIN_BLOCK_COPY_REUSE_EXT = 2;
export const VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB = 4;
export const VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES = 8;

/** Typed-parameter names accepted by virDomainBlockCopy. */
export const VIR_DOMAIN_BLOCK_COPY_BANDWIDTH = 'bandwidth';
export const VIR_DOMAIN_BLOCK_COPY_GRANULARITY = 'granularity';
export const VIR_DOMAIN_BLOCK_COPY_BUF_SIZE = 'buf-size';

/** virTypedParameterType */
export enum TypedParamType {
  Int = 1,
  UInt = 2,
  LLong = 3,
  ULLong = 4,
  Double = 5,
  Boolean = 6,
  String = 7,
}

/** virDomainEventID */
export enum DomainEventId {
  Lifecycle = 0,
  BlockJob = 8,
  BlockJob2 = 16,
}

/** virDomainEventType (lifecycle `event` field) */
export enum DomainLifecycleEvent {
  Defined = 0,
  Undefined = 1,
  Started = 2,
  Suspended = 3,
  Resumed = 4,
  Stopped = 5,
  Shutdown = 6,
  PMSuspended = 7,
  Crashed = 8,
}
