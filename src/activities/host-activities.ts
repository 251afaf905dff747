// The host worker's activities: thin adapters from the workflow's steps to the host services
// (libvirt session, work dirs, qemu-img, image upload). Built by a factory that receives its
// dependencies, in the temporalio/samples-typescript style.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { describeDomain, probeLiveSnapshot } from '../host/domain-inspection';
import { liveSnapshot } from '../host/live-snapshot';
import type { QuiesceOutcome } from '../host/quiesce';
import { novaPowerState } from '../host/power-state';
import { convertImage } from '../host/qemu-img-convert';
import { describedChain } from '../host/disk-chain';
import { restoreGuestState, saveGuestForColdSnapshot } from '../host/cold-snapshot';
import { removeGuestMarkers } from '../host/guest-markers';
import { translateFailures } from './activity-failures';
import { Semaphore, withHeartbeat } from './activity-support';
import type { HostActivities } from '../contract';
import { createOnePassActivities } from './one-pass-activities';
import { createDirectSnapshotActivity } from './direct-snapshot-activity';
import { createVolumeHostActivities } from './volume-activities';
import type { HostActivityDeps } from './host-activity-deps';

export type { HostActivityDeps, TransferReporter } from './host-activity-deps';

/** The workflow run of the activity: its run id names the run's work dir, as the workflow's workDirKey does. */
function activityRun(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (run === undefined) throw new Error('a cold snapshot step runs inside a workflow run: its guest marker lives in that run\'s work dir');
  return run;
}

export function createHostActivities(deps: HostActivityDeps): HostActivities {
  const { config, session, workDirs, images } = deps;
  const extracts = new Semaphore(config.maxConcurrentExtracts);
  const uploads = new Semaphore(config.maxConcurrentUploads);
  const lookup = async (name: string) => {
    const client = await session.client();
    return { client, dom: await client.domainLookupByName(name) };
  };

  const activities: HostActivities = {
    async getDomainPowerState({ domainName }) {
      const { client, dom } = await lookup(domainName);
      return novaPowerState((await client.domainGetState(dom)).state);
    },

    async describeDomain({ domainName }) {
      const { client, dom } = await lookup(domainName);
      return describeDomain(client, dom, config);
    },

    async probeLiveSnapshot({ domainName, diskTarget }) {
      const { client, dom } = await lookup(domainName);
      return probeLiveSnapshot(client, dom, diskTarget);
    },

    async prepareColdSnapshot({ domainName, powerState }) {
      return withHeartbeat(async () => {
        const { client, dom } = await lookup(domainName);
        // The run's work dir (the one its extract uses) holds the save's marker, so the input is the
        // seed's and recorded histories replay unchanged; its owner record lets the sweep judge it.
        const run = activityRun();
        const workDir = await workDirs.ensure(run.runId, false);
        await workDirs.writeOwner(run.runId, run.workflowId);
        const { detachedDevices } = await saveGuestForColdSnapshot(client, dom, { workDir, powerState });
        return { detachedDevices };
      });
    },

    async extractSnapshot({ domainName, workDirKey, mode, description }) {
      return extracts.run(() =>
        withHeartbeat(async (report, signal) => {
          const dir = await workDirs.create(workDirKey, mode === 'live');
          // Lets a restarted host worker tell an abandoned work dir from one whose run is still open.
          const owner = Context.current().info.workflowExecution;
          if (owner) await workDirs.writeOwner(workDirKey, owner.workflowId);
          const outputPath = join(dir, `snapshot.${description.imageFormat}`);
          const { client, dom } = await lookup(domainName);
          let quiesce: QuiesceOutcome = { quiesced: false, freezeWindowMs: null };
          if (mode === 'live') {
            quiesce = await liveSnapshot(client, dom, description, {
              workDir: dir,
              outputPath,
              outputFormat: description.imageFormat,
              mirrorTimeoutMs: 60 * 60_000,
              quiesceTimeoutMs: config.quiesceTimeoutMs,
              log: (message, fields) => Context.current().log.warn(message, { ...fields, domain: domainName }),
              signal,
              onProgress: (phase, fraction) => report({ phase, fraction }),
            });
          } else {
            const { top, backing } = describedChain(description);
            await convertImage([top, ...backing], outputPath, {
              outputFormat: description.imageFormat,
              signal,
              onProgress: (fraction) => report({ phase: 'convert', fraction }),
            });
          }
          const { size } = await stat(outputPath);
          return { path: outputPath, size, format: description.imageFormat, ...quiesce };
        }),
      );
    },

    async restoreGuest({ domainName, priorPowerState, resumePaused }) {
      return withHeartbeat(async () => {
        const client = await session.client();
        const outcome = await restoreGuestState(client, domainName, priorPowerState, resumePaused === true ? { resumePaused } : {});
        // The guest is as it was (or gone): the run holds it no longer, and a dir its close left for the marker goes.
        const { runId } = activityRun();
        await removeGuestMarkers(workDirs.pathFor(runId));
        await workDirs.removeEmpty(runId);
        return { recreated: outcome.recreated, reattached: outcome.reattached };
      });
    },

    async uploadSnapshot({ imageId, path, format }) {
      const run = Context.current().info.workflowExecution;
      return uploads.run(() =>
        withHeartbeat(async (report, signal) => {
          const { size: total } = await stat(path);
          // Nova's image update: the record describes the bytes actually written (qcow2 or raw, bare).
          await images.setFormats(imageId, { disk_format: format, container_format: 'bare' });
          let counted = 0;
          await images.upload(imageId, path, {
            signal,
            onProgress: (bytesDone) => {
              deps.metrics?.addUploadedBytes(bytesDone - counted);
              counted = Math.max(counted, bytesDone);
              report({ bytesDone, total });
              if (run) deps.transfer?.report(run.workflowId, run.runId, bytesDone, total);
            },
          });
          const image = await images.get(imageId);
          return { imageId, status: image.status, size: image.size ?? total, checksum: image.checksum ?? '' };
        }),
      );
    },

    async removeSnapshotWorkDir({ workDirKey }) {
      await workDirs.remove(workDirKey);
    },

    ...createOnePassActivities(deps, { extracts, uploads }),
    ...createDirectSnapshotActivity(deps),
    ...createVolumeHostActivities({ session, cinder: deps.cinder, quiesceTimeoutMs: config.quiesceTimeoutMs }),
  };
  return translateFailures(activities);
}
