// The fault matrix's vocabulary: modes, steps (each the barrier that holds it open), faults, which
// cells make sense, and what each fault must end in. Shared by the full run (test/faults) and the
// core subset in npm test.
export const MODES = ['live', 'cold-running', 'cold-paused'] as const;
export type Mode = (typeof MODES)[number];

export const STEPS = [
  'task_state',
  'lookup_domain',
  'probe',
  'managed_save',
  'extract',
  'restore_guest',
  'upload',
  'final_task_state',
  // a volume-backed instance's steps (Nova's snapshot_volume_backed)
  'plan_volumes',
  'snapshot_volumes',
  'snapshot_volumes_done',
  'complete_image',
] as const;
export type Step = (typeof STEPS)[number];

/** The barrier name each step holds at (src/fault-points/activity-barriers.ts). */
export const STEP_BARRIER: Record<Step, string> = {
  task_state: 'task_state_image_snapshot',
  lookup_domain: 'lookup_domain',
  probe: 'choose_mode',
  managed_save: 'prepare_cold',
  extract: 'extract',
  restore_guest: 'restore_guest',
  upload: 'upload',
  final_task_state: 'task_state_none',
  // held after task_state is claimed: plan_volumes is the next step
  plan_volumes: 'task_state_image_snapshot',
  snapshot_volumes: 'snapshot_volumes',
  snapshot_volumes_done: 'snapshot_volumes_done',
  complete_image: 'complete_image',
};

export const STEP_LABEL: Record<Step, string> = {
  task_state: 'task state',
  lookup_domain: 'domain lookup',
  probe: 'block-job probe',
  managed_save: 'detach+managedSave',
  extract: 'extract',
  restore_guest: 'recreate+re-attach',
  upload: 'upload',
  final_task_state: 'final task state',
  plan_volumes: 'plan (volumes, quota)',
  snapshot_volumes: 'Cinder snapshot calls',
  snapshot_volumes_done: 'after the snapshot calls',
  complete_image: 'image properties, active',
};

export const FAULTS = [
  'host-kill',
  'host-kill-long',
  'control-kill',
  'temporal-restart',
  'libvirtd-restart',
  'instance-deleted',
  'image-down',
  'image-5xx',
  'disk-full',
  'rbd-host-kill',
  'osd-restart',
  'mon-down',
  'cinder-volume-back',
  'cinder-volume-deadline',
  'rabbitmq-restart',
  'snapshot-stuck',
  'snapshot-quota',
  'snapshot-quota-413',
  'volume-host-kill',
  'volume-control-kill',
  'agent-hang',
  'agent-hang-required',
] as const;
export type Fault = (typeof FAULTS)[number];

/** Faults on guests whose root disk is in RBD: their cells need a stack with a Ceph cluster (FaultStack.rbd). */
export const RBD_FAULTS: readonly Fault[] = ['rbd-host-kill', 'osd-restart', 'mon-down'];

const VOLUME_STEPS: readonly Step[] = ['plan_volumes', 'snapshot_volumes', 'snapshot_volumes_done', 'complete_image'];

/**
 * Where each volume fault lands. Cinder's services and the quota change just before the create
 * calls (a snapshot becomes available within a second of its create, so "after the calls, before
 * available" is reached by stopping cinder-volume as the calls go out); the worker kills between the
 * create calls and the image update; the agent hangs before the freeze.
 */
const VOLUME_FAULT_STEP: Partial<Record<Fault, Step>> = {
  'cinder-volume-back': 'snapshot_volumes',
  'cinder-volume-deadline': 'snapshot_volumes',
  'rabbitmq-restart': 'snapshot_volumes',
  'snapshot-stuck': 'snapshot_volumes',
  'snapshot-quota': 'plan_volumes',
  'snapshot-quota-413': 'snapshot_volumes',
  'volume-host-kill': 'snapshot_volumes_done',
  'volume-control-kill': 'complete_image',
  'agent-hang': 'snapshot_volumes',
  'agent-hang-required': 'snapshot_volumes',
};

/**
 * Faults on guests booting from a Cinder volume (Nova's snapshot_volume_backed): their cells need a
 * stack with a Cinder (FaultStack.volumes), and run live at one step each.
 */
export const VOLUME_FAULTS = Object.keys(VOLUME_FAULT_STEP) as readonly Fault[];

/** How long the mon stays stopped in a mon-down cell. */
export const MON_DOWN_MS = 30_000;

/**
 * Where each RBD fault lands (live mode only: the live data path, with change tracking on the run's own
 * RBD snapshot read by qemu-nbd, else the backup job over the network disk):
 * the kill and the OSD's restart with the stream's bytes in flight; the mon's absence where the
 * host asks the cluster (`rbd info` for the disk's size and identity). QEMU's open image does not
 * need the mon to read, so the mon elsewhere would prove nothing.
 */
const RBD_FAULT_STEP: Partial<Record<Fault, Step>> = {
  'rbd-host-kill': 'upload',
  'osd-restart': 'upload',
  'mon-down': 'lookup_domain',
};

export const FAULT_LABEL: Record<Fault, string> = {
  'host-kill': '1 host worker kill -9, back in 3 s',
  'host-kill-long': '1b host worker away > start-to-close',
  'control-kill': '2 control worker kill -9',
  'temporal-restart': '3 Temporal server kill -9 + restart',
  'libvirtd-restart': '4 libvirtd restart',
  'instance-deleted': '5 instance deleted',
  'image-down': '6a image service kill -9, back in 3 s',
  'image-5xx': '6b image service answering 503',
  'disk-full': '7 snapshots dir full',
  'rbd-host-kill': 'R1 RBD disk: host worker kill -9 mid-stream',
  'osd-restart': 'R2 RBD disk: OSD kill -9, back in 5 s',
  'mon-down': 'R3 RBD disk: mon stopped 30 s',
  'cinder-volume-back': 'V1a volume-backed: cinder-volume stopped, back in 3 s',
  'cinder-volume-deadline': 'V1b volume-backed: cinder-volume stopped past the deadline',
  'rabbitmq-restart': 'V2 volume-backed: RabbitMQ stopped, back in 5 s',
  'snapshot-stuck': 'V3 volume-backed: snapshot stuck creating (cinder-volume hung)',
  'snapshot-quota': "V4a volume-backed: snapshot quota full (the plan's check)",
  'snapshot-quota-413': "V4b volume-backed: Cinder's 413 on the create call",
  'volume-host-kill': 'V5a volume-backed: host worker kill -9',
  'volume-control-kill': 'V5b volume-backed: control worker kill -9',
  'agent-hang': 'V6a volume-backed: guest agent hung',
  'agent-hang-required': 'V6b volume-backed: guest agent hung, os_require_quiesce',
};

/**
 * How long a "long" host-worker absence lasts, per step, and only where it is bounded and
 * reasonable: the inspection steps have a 20 s start-to-close (their schedule-to-start of 30 min
 * then holds the retry for the returning worker); the extract has a 2 h start-to-close but a 15 s
 * heartbeat timeout, which is what actually bounds a dead attempt, so it is away 25 s.
 */
export const LONG_ABSENCE_MS: Partial<Record<Step, number>> = {
  lookup_domain: 30_000,
  probe: 30_000,
  extract: 25_000,
};

/** Steps that call libvirt: a libvirtd restart elsewhere would only disturb the shared daemon for nothing. */
const LIBVIRT_STEPS: readonly Step[] = ['lookup_domain', 'probe', 'managed_save', 'extract', 'restore_guest'];

/** null when the cell applies, else why it is n/a. */
export function notApplicable(mode: Mode, step: Step, fault: Fault): string | null {
  const volumeStep = VOLUME_FAULT_STEP[fault];
  if (volumeStep !== undefined) {
    if (mode !== 'live') return 'volume cells run on a running guest';
    return step === volumeStep ? null : `the volume fault lands in ${STEP_LABEL[volumeStep]}`;
  }
  if (VOLUME_STEPS.includes(step)) return 'a volume-backed step: only volume cells reach it';
  const rbdStep = RBD_FAULT_STEP[fault];
  if (rbdStep !== undefined) {
    if (mode !== 'live') return 'RBD cells run live (the backup job over the network disk)';
    return step === rbdStep ? null : `the RBD fault lands in ${STEP_LABEL[rbdStep]}`;
  }
  if (step === 'probe' && mode !== 'live') return 'no block-job probe in cold mode';
  if ((step === 'managed_save' || step === 'restore_guest') && mode === 'live') return 'live mode does not stop the guest';
  if ((fault === 'image-down' || fault === 'image-5xx') && step !== 'upload') return 'image data only moves in upload';
  if (fault === 'disk-full' && step !== 'extract') return 'only the extract writes to the snapshots dir';
  if (fault === 'disk-full' && mode !== 'live') return 'the one-pass cold path writes nothing to the snapshots dir';
  if (fault === 'libvirtd-restart' && !LIBVIRT_STEPS.includes(step)) return 'step does not use libvirt';
  if (fault === 'host-kill-long') {
    if (LONG_ABSENCE_MS[step] === undefined) return 'no bounded start-to-close worth waiting out';
    // one mode per step keeps the long waits to a few cells
    if ((step === 'extract') !== (mode === 'cold-running')) return 'run in one mode only';
    if (step !== 'extract' && mode !== 'live') return 'run in one mode only';
  }
  return null;
}

export type Expected = 'completed' | 'failed' | 'either';

/** Faults 1–4 and a short image-service outage must resume; the rest end failed-and-compensated. */
export function expectedOutcome(fault: Fault, step: Step): Expected {
  switch (fault) {
    case 'host-kill':
    case 'host-kill-long':
    case 'control-kill':
    case 'temporal-restart':
    case 'libvirtd-restart':
    case 'image-down':
      return 'completed';
    // the RBD faults heal within the steps' deadlines: a new worker resumes the stream, QEMU's
    // librbd resends to the restarted OSD, and the inspection's retries outlast the mon's 30 s
    case 'rbd-host-kill':
    case 'osd-restart':
    case 'mon-down':
      return 'completed';
    case 'image-5xx':
    case 'disk-full':
      return 'failed';
    // back within the deadline, the queued create goes on; a killed worker's step is retried and
    // finds the run's snapshot (look-before-create); a hung agent is bounded, then crash-consistent
    case 'cinder-volume-back':
    case 'volume-host-kill':
    case 'volume-control-kill':
    case 'agent-hang':
      return 'completed';
    // the deadline passes, Cinder refuses the snapshots, or the image requires a quiesce that fails
    case 'cinder-volume-deadline':
    case 'snapshot-stuck':
    case 'snapshot-quota':
    case 'snapshot-quota-413':
    case 'agent-hang-required':
      return 'failed';
    // the broker's restart may or may not lose the create's cast: either end, nothing left behind
    case 'rabbitmq-restart':
      return 'either';
    case 'instance-deleted':
      // deleted after the last task_state write, the snapshot has already finished
      return step === 'final_task_state' ? 'completed' : 'failed';
  }
}
