// Names the application job shares with the v3 OpenPitrix app store, the v4 `application.kubesphere.io/v2`
// kinds and the original tool's backups (reference §4.3).

export const APPLICATION_JOB_NAME = 'application';

/** cc path of the app store switch. */
export const STORE_ENABLED_PATH = ['spec', 'openpitrix', 'store', 'enabled'] as const;

/** Namespace of the v4 app store (chart ConfigMaps live here). */
export const APPLICATION_NAMESPACE = 'extension-openpitrix';
export const SYSTEM_WORKSPACE = 'system-workspace';

/** Key of the chart archive in a chart ConfigMap (v4 `BinaryKey`). */
export const CHART_BINARY_KEY = 'BinaryKey';

/** The original's backup keys: `application-<plural>.application.kubesphere.io.v1alpha1`. */
export const backupKey = (plural: string) => `application-${plural}.application.kubesphere.io.v1alpha1`;
/** Names of the releases left out of the migration, and why (JSON; no values, no credentials). */
export const RELEASE_PROBLEMS_KEY = 'application-release-problems';

/** v3 labels and annotations. */
export const V3 = {
  workspace: 'kubesphere.io/workspace',
  namespace: 'kubesphere.io/namespace',
  cluster: 'kubesphere.io/cluster',
  creator: 'kubesphere.io/creator',
  appId: 'application.kubesphere.io/app-id',
  appVersionId: 'application.kubesphere.io/app-version-id',
  categoryId: 'application.kubesphere.io/app-category-id',
} as const;

/** v4 labels, annotations and values. */
export const V4 = {
  appId: 'application.kubesphere.io/app-id',
  appVersionId: 'application.kubesphere.io/appversion-id',
  appType: 'application.kubesphere.io/app-type',
  repoName: 'application.kubesphere.io/repo-name',
  categoryName: 'application.kubesphere.io/app-category-name',
  maintainers: 'application.kubesphere.io/app-maintainers',
  latestVersion: 'application.kubesphere.io/latest-app-version',
  originalName: 'application.kubesphere.io/app-originalName',
  aliasName: 'kubesphere.io/alias-name',
  description: 'kubesphere.io/description',
  creator: 'kubesphere.io/creator',
  workspace: 'kubesphere.io/workspace',
  namespace: 'kubesphere.io/namespace',
  cluster: 'kubesphere.io/cluster',
  helm: 'helm',
  upload: 'upload',
  storeCleanFinalizer: 'storeCleanFinalizer.application.kubesphere.io',
  releaseFinalizer: 'helmrelease.application.kubesphere.io',
} as const;

/** The category v3 creates by itself; v4 has its own. */
export const UNCATEGORIZED_ID = 'ctg-uncategorized';

/** Where the v3 MinIO is, unless `dynamicOptions.minioEndpoint` says otherwise. */
export const DEFAULT_MINIO_ENDPOINT = 'http://minio.kubesphere-system.svc:9000';
export const DEFAULT_MINIO_BUCKET = 'app-store';
export const MINIO_NAME = 'minio';
