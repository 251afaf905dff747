// Unit tests assert outcomes, never speed; some do real file I/O, worker threads and hashing, and on
// a shared 2-core machine under load jest's 5 s default has timed out tests whose code was fine.
jest.setTimeout(30_000);
