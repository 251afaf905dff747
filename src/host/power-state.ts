// libvirt's virDomainState → Nova's power_state (nova/virt/libvirt/driver.py LIBVIRT_POWER_STATE).
import { DomainState } from '../libvirt';
import {
  POWER_STATE_CRASHED,
  POWER_STATE_NOSTATE,
  POWER_STATE_PAUSED,
  POWER_STATE_RUNNING,
  POWER_STATE_SHUTDOWN,
  POWER_STATE_SUSPENDED,
  type PowerState,
} from '../contract';

export function novaPowerState(state: DomainState): PowerState {
  switch (state) {
    case DomainState.Running:
    case DomainState.Blocked:
      return POWER_STATE_RUNNING;
    case DomainState.Paused:
      return POWER_STATE_PAUSED;
    case DomainState.Shutdown:
    case DomainState.Shutoff:
      return POWER_STATE_SHUTDOWN;
    case DomainState.Crashed:
      return POWER_STATE_CRASHED;
    case DomainState.PMSuspended:
      return POWER_STATE_SUSPENDED;
    default:
      return POWER_STATE_NOSTATE;
  }
}
