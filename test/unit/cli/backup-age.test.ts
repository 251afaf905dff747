// snapctl backups prints ages as an operator reads them: the two largest units.
import { formatAge } from '../../../src/cli/backup-commands';

it.each([
  [0, '0s'],
  [40, '40s'],
  [60, '1m 0s'],
  [7_500, '2h 5m'],
  [3 * 86_400 + 4 * 3_600 + 59, '3d 4h'],
  [86_400 + 30, '1d 0h'],
  [-5, '0s'],
])('%d s is %s', (seconds, text) => {
  expect(formatAge(seconds)).toBe(text);
});
