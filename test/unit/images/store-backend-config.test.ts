// The shared store's environment: chunk PUTs in flight default to 8, and anything but a whole
// number from 1 to 64 stops the service naming the variable.
import { InvalidEnvironment } from '../../../src/config/env';
import { storeBackendFromEnv } from '../../../src/images/service/store-backend-config';
import { DEFAULT_CHUNK_PUTS_IN_FLIGHT } from '../../../src/images/store/store-backend';

const s3Env = { SNAP_IMAGE_STORE_BACKEND: 's3', SNAP_IMAGE_S3_ENDPOINT: 'http://rgw.example:7480', SNAP_IMAGE_S3_BUCKET: 'snap-store', SNAP_IMAGE_S3_ACCESS_KEY_ID: 'key', SNAP_IMAGE_S3_SECRET_ACCESS_KEY: 'secret' };

describe('the S3 store backend environment', () => {
  it('keeps 8 chunk PUTs in flight by default, and takes another whole number from 1 to 64', async () => {
    expect(DEFAULT_CHUNK_PUTS_IN_FLIGHT).toBe(8);
    expect((await storeBackendFromEnv(s3Env))?.putsInFlight).toBe(8);
    expect((await storeBackendFromEnv({ ...s3Env, SNAP_IMAGE_S3_CHUNK_PUTS_IN_FLIGHT: '1' }))?.putsInFlight).toBe(1);
    expect((await storeBackendFromEnv({ ...s3Env, SNAP_IMAGE_S3_CHUNK_PUTS_IN_FLIGHT: '64' }))?.putsInFlight).toBe(64);
  });

  it.each(['0', '65', '2.5', 'many', '-1'])('refuses %j chunk PUTs in flight, naming the variable', async (value) => {
    const read = storeBackendFromEnv({ ...s3Env, SNAP_IMAGE_S3_CHUNK_PUTS_IN_FLIGHT: value });
    await expect(read).rejects.toBeInstanceOf(InvalidEnvironment);
    await expect(read).rejects.toThrow('SNAP_IMAGE_S3_CHUNK_PUTS_IN_FLIGHT');
  });
});
