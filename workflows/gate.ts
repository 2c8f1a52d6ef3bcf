// The gate between pre- and post-upgrade, where KubeSphere core itself is upgraded (helm upgrade
// ks-core): `signal` waits for coreUpgraded (bounded by gateTimeout when set), `detect` has an
// activity watch the cluster until v4 core runs (bounded by detectTimeout, final), `helm` runs the
// helm upgrade itself and then watches the rollout the same way. When a bound passes or a step
// fails the operator decides, knowing what was seen.
import { condition, isCancellation, setHandler, workflowInfo } from '@temporalio/workflow';
import type { GateMode } from '../src/config/types.js';
import { CONTROL_ATTEMPTS, problemOf, type UpgradeSteps } from './activities.js';
import { AbortRequested, type Decisions } from './decisions.js';
import { tuningMs, type UpgradeClusterInput } from './pure/input.js';
import { GATE_TIMEOUT, coreUpgradedSignal } from './messages.js';
import { now, type UpgradeState } from './state.js';

const FORWARD = { policy: 'abort', timeout: 'abort', resume: 'Running' } as const;

export class Gate {
  private coreUpgraded = false;

  constructor(
    private readonly state: UpgradeState,
    private readonly decisions: Decisions,
    private readonly input: UpgradeClusterInput,
  ) {
    setHandler(
      coreUpgradedSignal,
      (arg) => {
        this.coreUpgraded = true;
        this.state.progress.gate.detail = `coreUpgraded signalled${arg?.by ? ` by ${arg.by}` : ''}${arg?.note ? `: ${arg.note}` : ''}`;
      },
      {
        description:
          'Send after the helm upgrade of ks-core finished: lets post-upgrade start (gate mode signal).',
      },
    );
  }

  /** Waits until the gate opens (or the operator skips it); throws AbortRequested on abort. */
  async pass(mode: GateMode, steps: UpgradeSteps): Promise<void> {
    if (mode === 'none') return;
    this.state.progress.gate.state = 'waiting';
    if (mode === 'signal') await this.waitForSignal();
    else if (mode === 'helm') await this.helm(steps);
    else await this.detect(steps);
    this.state.progress.gate.state = 'passed';
    this.state.progress.gate.passedAt = now();
    this.state.setStatus('Running');
  }

  private async waitForSignal(): Promise<void> {
    const timeoutMs = tuningMs(this.input).gateTimeout;
    for (;;) {
      this.state.setStatus('AwaitingCoreUpgrade');
      this.state.details([
        `### \`${this.input.cluster}\`: pre-upgrade done, waiting for the KubeSphere v4 core upgrade`,
        'Run the helm upgrade of ks-core (see the upgrade guide), then let post-upgrade start:',
        `\`temporal workflow signal -w ${workflowInfo().workflowId} --name coreUpgraded --input '{"by":"<you>"}'\``,
        `or \`ks-upgrade gate ${this.input.cluster}\``,
      ]);
      let passed = true;
      if (timeoutMs === undefined) await condition(() => this.coreUpgraded);
      else passed = await condition(() => this.coreUpgraded, timeoutMs);
      if (passed) return;
      const d = await this.decisions.ask(
        {
          phase: 'gate',
          error: `no coreUpgraded signal within ${this.input.tuning?.gateTimeout ?? ''}`,
          allowed: ['retry', 'abort'],
        },
        FORWARD,
      );
      if (d.action === 'abort') throw new AbortRequested(d);
    }
  }

  /**
   * Gate helm, first step (before pre-upgrade, as KubeSphere's upgrade.sh): the target chart's v4
   * CRDs. A failure goes to the operator like a failed gate.
   */
  async applyCoreCrds(steps: UpgradeSteps): Promise<void> {
    for (;;) {
      this.state.setStatus('Running', 'pre-upgrade');
      this.state.details(
        `**Applying** the KubeSphere v4 CRDs of the target ks-core chart on \`${this.input.cluster}\`.`,
      );
      try {
        const res = await steps.applyCoreCrds();
        this.state.progress.gate.detail = `applied ${res.crds} CRDs of ${res.chart}`;
        return;
      } catch (err) {
        if ((await this.stepFailed(err)) === 'skip') return;
      }
    }
  }

  /**
   * Gate helm: `helm upgrade ks-core`, then the rollout watch (the detect gate's final deadline).
   * Each operator retry is a new attempt: helm runs at most once per attempt (the activity
   * recognises its own earlier run after a crash), and never again once ks-core is at the target.
   */
  private async helm(steps: UpgradeSteps): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.state.setStatus('AwaitingCoreUpgrade');
      this.state.details(
        `### \`${this.input.cluster}\`: upgrading KubeSphere core (helm upgrade ks-core, attempt ${attempt})`,
      );
      try {
        this.state.coreUpgradeTried = true;
        const up = await steps.upgradeCoreRelease(attempt);
        const gate = this.state.progress.gate;
        gate.detail = `ks-core revision ${up.revision} (${up.chart}): ${up.reason}`;
        this.state.details(
          `### \`${this.input.cluster}\`: ks-core revision ${up.revision} deployed; waiting for the rollout`,
        );
        const deadline = new Date(Date.now() + steps.detectTimeoutMs).toISOString();
        const res = await steps.waitForCoreUpgrade(deadline);
        gate.detail += `; ${res.reason}`;
        return;
      } catch (err) {
        if ((await this.stepFailed(err)) === 'skip') return;
      }
    }
  }

  /** A failed gate step goes to the operator: retry or skip (returned), or abort (thrown). */
  private async stepFailed(err: unknown): Promise<'retry' | 'skip'> {
    if (isCancellation(err)) throw err;
    const p = problemOf(err, CONTROL_ATTEMPTS);
    const lastSeen = p.details?.lastSeen;
    if (p.type === GATE_TIMEOUT && typeof lastSeen === 'string') this.state.progress.gate.detail = lastSeen;
    const d = await this.decisions.ask(
      {
        phase: 'gate',
        error: p.message,
        ...(p.hint ? { hint: p.hint } : {}),
        allowed: ['retry', 'skip', 'abort'],
      },
      FORWARD,
    );
    if (d.action === 'abort') throw new AbortRequested(d);
    return d.action;
  }

  private async detect(steps: UpgradeSteps): Promise<void> {
    for (;;) {
      this.state.setStatus('AwaitingCoreUpgrade');
      this.state.details(
        `### \`${this.input.cluster}\`: waiting until KubeSphere v4 core runs (detect gate)`,
      );
      try {
        const deadline = new Date(Date.now() + steps.detectTimeoutMs).toISOString();
        this.state.progress.gate.detail = (await steps.waitForCoreUpgrade(deadline)).reason;
        return;
      } catch (err) {
        if ((await this.stepFailed(err)) === 'skip') return;
      }
    }
  }
}
