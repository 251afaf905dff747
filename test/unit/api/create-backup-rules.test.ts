// createBackup's request rules, as Nova's create_backup schema has them: name, backup_type and
// rotation required, rotation an integer >= 0 or a string of digits (Nova's int() of it), no other
// key; and Nova's action_peek: one known action per body, an unknown one named.
import { CreateBackupBodySchema, refuseUnknownActions, RotationSchema } from '../../../src/api/backup-action';
import { ApiError } from '../../../src/api/api-errors';
import { MAX_ROTATION } from '../../../src/contract';

const rotation = (value: unknown) => {
  const parsed = RotationSchema.safeParse(value);
  return parsed.success ? parsed.data : parsed.error.issues.map((i) => i.message);
};

describe('createBackup request rules', () => {
  it('takes rotation as an integer >= 0 or a string of digits, and caps what no store could hold', () => {
    expect([0, 7, '0', '007', '12'].map(rotation)).toEqual([0, 7, 0, 7, 12]);
    expect(rotation('99999999999999999999999')).toBe(MAX_ROTATION);
  });

  it.each([-1, 1.5, '', '-1', '1e3', ' 1', true, null, [1], { n: 1 }])('refuses rotation %j with one message', (value) => {
    expect(rotation(value)).toEqual(['rotation must be an integer >= 0, or a string of digits']);
  });

  it('requires name, backup_type and rotation, and refuses any other key', () => {
    const ok = (body: unknown) => CreateBackupBodySchema.safeParse(body).success;
    expect(ok({ name: 'n', backup_type: 'daily', rotation: 1 })).toBe(true);
    expect(ok({ name: 'n', backup_type: '', rotation: 0, metadata: { k: 'v' } })).toBe(true);
    expect(ok({ name: 'n', backup_type: 'daily' })).toBe(false);
    expect(ok({ name: 'n', rotation: 1 })).toBe(false);
    expect(ok({ backup_type: 'daily', rotation: 1 })).toBe(false);
    expect(ok({ name: 'n', backup_type: 'daily', rotation: 1, keep: 2 })).toBe(false);
    expect(ok({ name: 'n', backup_type: 'x'.repeat(256), rotation: 1 })).toBe(false);
    expect(ok({ name: 'n', backup_type: 'da\nily', rotation: 1 })).toBe(false);
  });

  it('names an unknown action, and refuses two known ones in one body', () => {
    const refusal = (body: unknown) => {
      try {
        refuseUnknownActions(body, ['createImage', 'createBackup']);
        return null;
      } catch (err) {
        return err instanceof ApiError ? `${err.status} ${err.message}` : String(err);
      }
    };
    expect(refusal({ createBackup: {} })).toBeNull();
    expect(refusal({ createImage: {}, extra: 1 })).toBeNull();
    expect(refusal({ reboot: {} })).toBe('400 There is no such action: reboot');
    expect(refusal({})).toBe('400 Malformed request body');
    expect(refusal([])).toBe('400 Malformed request body');
    expect(refusal({ createImage: {}, createBackup: {} })).toBe('400 Malformed message body: too many body keys');
  });
});
