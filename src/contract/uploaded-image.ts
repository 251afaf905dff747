// An image as an upload or a hand-off left it: what the snapshot, direct and volume-backed steps return.
export interface UploadedImage {
  imageId: string;
  status: string;
  size: number;
  checksum: string;
}
