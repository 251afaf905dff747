// What a one-pass stream takes and gives (image-stream.ts for the logical upload, named-upload.ts for
// the named chunks): shared by both without either importing the other.
import type { Image, ImageClient } from '../images/client';
import type { AllocationMap, ImageFormat } from '../qcow2';
import type { BandwidthLimit } from './bandwidth-limit';

export interface StreamProgress {
  /** bytes the image service has committed */
  acknowledged: number;
  /** bytes handed to the network, acknowledged or not */
  sent: number;
  total: number;
}

export interface StreamImageOptions {
  images: ImageClient;
  imageId: string;
  format: ImageFormat;
  socketPath: string;
  exportName: string;
  map: AllocationMap;
  /** names the export (its point in time): staged bytes of another export are discarded */
  exportId: string;
  limit?: BandwidthLimit;
  signal?: AbortSignal;
  segmentBytes?: number;
  /** custom properties set at commit, next to the logical digest */
  properties?: Record<string, string>;
  onProgress?: (progress: StreamProgress) => void;
  /** breaks in a row without progress survived inside one call before giving up to the activity's retry */
  maxBreaks?: number;
  /** send only the changed extents, composed over this parent (a composing service only) */
  incremental?: IncrementalSource;
  /** a full snapshot as a named upload when the service takes it (protocol 2); default true, the host worker's SNAP_IMAGE_NAMED_UPLOADS */
  namedUploads?: boolean;
}

export interface StreamOutcome {
  image: Image;
  /** image size (what the service stores) */
  size: number;
  /** where this call started: > 0 when it resumed staged bytes */
  resumedFrom: number;
  /** bytes sent by this call, resent ones included */
  bytesSent: number;
  resumable: boolean;
  logicalDigest: string;
  /** guest data bytes the stream carries in all (the changed extents for an incremental) */
  changedBytes: number;
}

/** An incremental: the parent image, and the ranges that may differ from it. */
export interface IncrementalSource {
  parentImageId: string;
  changed: readonly (readonly [number, number])[];
}
