// The documents prepare-upgrade appends to the ks-core release record come out again, exactly,
// before the core rollback hands that record to `helm rollback` (src/helm/core-upgrade.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  RELEASE_OBJECTS,
  appendToManifest,
  missingFromManifest,
  withoutAdoptionStubs,
} from '../../src/jobs/iam/prepare.js';

const V3_MANIFEST = `---
# Source: ks-core/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: kubesphere
---
# Source: ks-core/templates/kubesphere-config.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: kubesphere-config
data:
  kubesphere.yaml: |
    authentication: {}
`;

describe('adoption stubs in the ks-core release record', () => {
  it('appended stubs are removed, leaving the manifest byte for byte as it was', () => {
    const stubbed = appendToManifest(V3_MANIFEST, missingFromManifest(V3_MANIFEST));
    assert.equal(missingFromManifest(stubbed).length, 0);
    assert.notEqual(stubbed, V3_MANIFEST);
    assert.equal(withoutAdoptionStubs(stubbed), V3_MANIFEST);
  });

  it("a chart's own rendering of an adopted object (with content) and content-less chart objects stay", () => {
    assert.equal(withoutAdoptionStubs(V3_MANIFEST), V3_MANIFEST);
    assert.match(withoutAdoptionStubs(V3_MANIFEST), /name: kubesphere-config/);
  });

  it('every object prepare-upgrade may append is recognised', () => {
    assert.equal(withoutAdoptionStubs(appendToManifest('', RELEASE_OBJECTS)).trim(), '');
  });
});
