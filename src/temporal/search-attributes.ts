import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// Custom search attributes the workflow upserts and ops queries filter on. The dev server registers
// them at start (temporal/ scripts); a real cluster needs `temporal operator search-attribute create`.
export const InstanceUuidKey = defineSearchAttributeKey('InstanceUuid', SearchAttributeType.KEYWORD);
export const ComputeHostKey = defineSearchAttributeKey('ComputeHost', SearchAttributeType.KEYWORD);
export const ImageIdKey = defineSearchAttributeKey('ImageId', SearchAttributeType.KEYWORD);
export const SnapshotStepKey = defineSearchAttributeKey('SnapshotStep', SearchAttributeType.KEYWORD);

export const CUSTOM_SEARCH_ATTRIBUTES = [InstanceUuidKey, ComputeHostKey, ImageIdKey, SnapshotStepKey] as const;
