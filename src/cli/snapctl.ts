#!/usr/bin/env node
// snapctl: the command line of durable VM snapshots. Talks to the compute API (SNAP_API_URL) and
// the image API (SNAP_IMAGE_URL) with the token in SNAP_TOKEN. Exit codes: see cli-errors.ts.
import { parseArgs } from 'node:util';
import { GlanceHttpClient } from '../images/client';
import { ComputeApiClient } from './api-client';
import { cliConfigFromEnv } from './cli-config';
import { CliError, ExitCode, usageError, type ExitCodeValue } from './cli-errors';
import { listBackupsCommand } from './backup-commands';
import { listServersCommand, parseMetadata, showServerCommand, snapshotCommand } from './compute-commands';
import { downloadImageCommand, imageCliError, listImagesCommand, showImageCommand, storeVerifyCommand } from './image-commands';
import { listHostsCommand, listSnapshotsCommand, retryCommand } from './ops-commands';
import type { Output } from './output';
import { SCHEDULE_USAGE, type ScheduleCreateOptions, scheduleActionCommand, scheduleCreateCommand, scheduleDeleteCommand, scheduleListCommand, scheduleShowCommand } from './schedule-commands';
import { printable } from './terminal-text';
import { errorMessage, errorStack, RETENTION_PERIODS } from '../contract';

export const USAGE = `usage: snapctl <command> [options]

commands:
  snapshot <server> --name N [--metadata k=v ...] [--wait]
                         snapshot a server (id or unique name); --wait shows step and bytes until it ends
  servers                list your servers (admins also see the host)
  show <server>          show one server
  backups [<server>] [--all]
                         each server's backups: type, kind (full/incremental), size, age, schedule;
                         --all: every project's (admin)
  images                 list your images
  image <id>             show one image
  download <id> <file>   download an active image's data (checksum verified)
  snapshots [--failed|--running|--completed] [--instance UUID] [--host H]
                         snapshot runs from Temporal (admin)
  retry <workflowId>     retry a failed snapshot run (admin)
  hosts                  compute hosts (admin)
  store-verify [--start] [--wait]
                         the image store's verify job: the last or running one and its schedule;
                         --start starts one now, --wait follows it to its end (admin)
  schedule create <server> (--cron EXPR | --interval DURATION) --type T --keep N
                  [--time-zone ZONE] [--jitter DURATION]
                         create (or replace) a server's backup schedule: a backup of type T
                         at each cron time or interval, the newest N of the type kept
                         (DURATION: seconds, or 30m, 6h, 1d)
  schedule list [--all]  backup schedules of your servers (--all: every project's, admin)
  schedule show <server> a schedule: next runs, recent runs, paused
  schedule pause <server> [--note TEXT] | resume <server> | trigger <server> | delete <server>
                         stop scheduled runs, start them again, back up now, or remove it

options:
  --json                 print the API's JSON instead of text
  -h, --help             this text

environment:
  SNAP_TOKEN             X-Auth-Token (printed by the API on first start; kept in .data/tokens.json)
  SNAP_API_URL           compute API, default http://127.0.0.1:8774
  SNAP_IMAGE_URL         image API, default http://127.0.0.1:9292

exit codes:
  0 ok, 2 usage or invalid request, 3 auth (401/403), 4 not found, 5 conflict (409),
  6 server error, 7 network (API unreachable), 8 snapshot failed (--wait), or the verify job
  shown found damage or failed (store-verify)
`;

const OPTIONS = {
  name: { type: 'string', short: 'n' },
  metadata: { type: 'string', short: 'm', multiple: true },
  wait: { type: 'boolean', short: 'w' },
  start: { type: 'boolean' },
  failed: { type: 'boolean' },
  running: { type: 'boolean' },
  completed: { type: 'boolean' },
  instance: { type: 'string' },
  host: { type: 'string' },
  cron: { type: 'string' },
  interval: { type: 'string' },
  'time-zone': { type: 'string' },
  jitter: { type: 'string' },
  type: { type: 'string' },
  keep: { type: 'string' },
  'keep-last': { type: 'string' },
  'keep-hourly': { type: 'string' },
  'keep-daily': { type: 'string' },
  'keep-weekly': { type: 'string' },
  'keep-monthly': { type: 'string' },
  'keep-yearly': { type: 'string' },
  note: { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw usageError(errorMessage(err));
  }
}

function positionals(args: string[], count: number, shape: string): string[] {
  if (args.length !== count) throw usageError(`usage: snapctl ${shape}`);
  return args;
}

export async function run(argv: string[], env: NodeJS.ProcessEnv, stdout: NodeJS.WriteStream, stderr: NodeJS.WriteStream): Promise<ExitCodeValue> {
  const { values, positionals: words } = parse(argv);
  const [command, ...args] = words;
  if (values.help === true || command === undefined || command === 'help') {
    stdout.write(USAGE);
    return command === undefined && values.help !== true ? ExitCode.usage : ExitCode.ok;
  }
  const config = cliConfigFromEnv(env);
  const api = new ComputeApiClient(config.apiUrl, config.token);
  const images = new GlanceHttpClient(config.imageUrl, config.token);
  const out: Output = { json: values.json === true, write: (text) => stdout.write(text) };

  switch (command) {
    case 'snapshot': {
      const [server] = positionals(args, 1, 'snapshot <server> --name N [--metadata k=v ...] [--wait]');
      if (values.name === undefined) throw usageError('snapshot needs --name');
      await snapshotCommand(api, out, server ?? '', { name: values.name, metadata: parseMetadata(values.metadata ?? []), wait: values.wait === true, progress: stderr });
      return ExitCode.ok;
    }
    case 'servers':
      positionals(args, 0, 'servers');
      await listServersCommand(api, out);
      return ExitCode.ok;
    case 'show': {
      const [server] = positionals(args, 1, 'show <server>');
      await showServerCommand(api, out, server ?? '');
      return ExitCode.ok;
    }
    case 'backups': {
      if (args.length > 1) throw usageError('usage: snapctl backups [<server>] [--all]');
      await listBackupsCommand(api, out, { server: args[0], allProjects: values.all === true });
      return ExitCode.ok;
    }
    case 'images':
    case 'image':
    case 'download':
      await imageCommand(command, args, images, out).catch((err: unknown) => {
        throw imageCliError(err, config.imageUrl);
      });
      return ExitCode.ok;
    case 'snapshots': {
      positionals(args, 0, 'snapshots [--failed|--running|--completed] [--instance UUID] [--host H]');
      const states = (['failed', 'running', 'completed'] as const).filter((s) => values[s] === true);
      if (states.length > 1) throw usageError('choose one of --failed, --running, --completed');
      await listSnapshotsCommand(api, out, { state: states[0], instance: values.instance, host: values.host });
      return ExitCode.ok;
    }
    case 'retry': {
      const [workflowId] = positionals(args, 1, 'retry <workflowId>');
      await retryCommand(api, out, workflowId ?? '');
      return ExitCode.ok;
    }
    case 'store-verify': {
      positionals(args, 0, 'store-verify [--start] [--wait]');
      const whole = await storeVerifyCommand(images, out, { start: values.start === true, wait: values.wait === true }).catch((err: unknown) => {
        throw imageCliError(err, config.imageUrl);
      });
      return whole ? ExitCode.ok : ExitCode.snapshotFailed;
    }
    case 'schedule':
      await scheduleCommand(args, values, api, out);
      return ExitCode.ok;
    case 'hosts':
      positionals(args, 0, 'hosts');
      await listHostsCommand(api, out);
      return ExitCode.ok;
    default:
      throw usageError(`unknown command ${JSON.stringify(command)}; see snapctl --help`);
  }
}

type Values = ReturnType<typeof parse>['values'];

function retentionOptions(values: Values): ScheduleCreateOptions['retention'] {
  return Object.fromEntries(RETENTION_PERIODS.map((keep) => [keep, values[`keep-${keep}`]]));
}

async function scheduleCommand(args: string[], values: Values, api: ComputeApiClient, out: Output): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create': {
      const [server] = positionals(rest, 1, SCHEDULE_USAGE);
      return scheduleCreateCommand(api, out, server ?? '', { cron: values.cron, interval: values.interval, timeZone: values['time-zone'], jitter: values.jitter, type: values.type, keep: values.keep, retention: retentionOptions(values) });
    }
    case 'list':
      positionals(rest, 0, SCHEDULE_USAGE);
      return scheduleListCommand(api, out, values.all === true);
    case 'show': {
      const [server] = positionals(rest, 1, SCHEDULE_USAGE);
      return scheduleShowCommand(api, out, server ?? '');
    }
    case 'pause':
    case 'resume':
    case 'trigger': {
      const [server] = positionals(rest, 1, SCHEDULE_USAGE);
      return scheduleActionCommand(api, out, server ?? '', sub, values.note);
    }
    case 'delete': {
      const [server] = positionals(rest, 1, SCHEDULE_USAGE);
      return scheduleDeleteCommand(api, out, server ?? '');
    }
    default:
      throw usageError(`usage: snapctl ${SCHEDULE_USAGE}`);
  }
}

async function imageCommand(command: 'images' | 'image' | 'download', args: string[], images: GlanceHttpClient, out: Output): Promise<void> {
  if (command === 'images') {
    positionals(args, 0, 'images');
    return listImagesCommand(images, out);
  }
  if (command === 'image') {
    const [id] = positionals(args, 1, 'image <id>');
    return showImageCommand(images, out, id ?? '');
  }
  const [id, file] = positionals(args, 2, 'download <id> <file>');
  return downloadImageCommand(images, out, id ?? '', file ?? '');
}

/** What main prints on stderr for a failure, and the exit code: server text escaped for the terminal. */
export function failureReport(err: unknown): { text: string; code: ExitCodeValue } {
  if (err instanceof CliError) return { text: `snapctl: ${printable(err.message)}\n`, code: err.exitCode };
  const text = errorStack(err);
  return { text: `snapctl: unexpected error: ${text.split('\n').map(printable).join('\n')}\n`, code: ExitCode.server };
}

async function main(): Promise<void> {
  let code: ExitCodeValue;
  try {
    code = await run(process.argv.slice(2), process.env, process.stdout, process.stderr);
  } catch (err) {
    const report = failureReport(err);
    process.stderr.write(report.text);
    code = report.code;
  }
  process.exitCode = code;
}

if (require.main === module) void main();
