// Glance's version discovery document, served without a token at `/` (300 Multiple Choices) and
// `/versions` (200), which keystoneauth and python-openstackclient read before any image call.
// Only the v2 minor versions whose calls this service implements are listed.

export const VERSION_URLS = ['/', '/versions'] as const;

/** Glance's v2.0…v2.5: the core image calls, without interoperable import (2.6) or stores (2.8). */
const MINORS = [5, 4, 3, 2, 1, 0];

export function imageVersions(baseUrl: string): unknown {
  return {
    versions: MINORS.map((minor, i) => ({
      id: `v2.${minor}`,
      status: i === 0 ? 'CURRENT' : 'SUPPORTED',
      links: [{ rel: 'self', href: `${baseUrl}/v2/` }],
    })),
  };
}
