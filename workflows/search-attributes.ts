// Search attributes of upgrade workflows (Keyword; registered by deploy/dev/up and by
// `temporal operator search-attribute create`). Never encrypted: no secret may go here.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const UpgradeStatusKey = defineSearchAttributeKey('UpgradeStatus', SearchAttributeType.KEYWORD);
export const UpgradePhaseKey = defineSearchAttributeKey('UpgradePhase', SearchAttributeType.KEYWORD);
export const UpgradeJobKey = defineSearchAttributeKey('UpgradeJob', SearchAttributeType.KEYWORD);
export const UpgradeClusterKey = defineSearchAttributeKey('UpgradeCluster', SearchAttributeType.KEYWORD);
export const UpgradeFleetKey = defineSearchAttributeKey('UpgradeFleet', SearchAttributeType.KEYWORD);

/** Every custom search attribute ks-upgrade uses, for server setup. */
export const SEARCH_ATTRIBUTE_NAMES = [
  'UpgradeStatus',
  'UpgradePhase',
  'UpgradeJob',
  'UpgradeCluster',
  'UpgradeFleet',
];
