// The gate between pre- and post-upgrade, where KubeSphere core itself is upgraded (helm upgrade
// ks-core): `signal` waits for coreUpgraded (bounded by gateTimeout when set), `detect` has an
// activity watch the cluster until v4 core runs (bounded by detectTimeout, final). When a bound
// passes the operator decides, knowing what was seen.
import { condition, isCancellation, setHandler, workflowInfo } from '@temporalio/workflow';
import type { GateMode } from '../src/config/types.js';
import { CONTROL_ATTEMPTS, problemOf, type UpgradeSteps } from './activities.js';
import { AbortRequested, type Decisions } from './decisions.js';
import { tuningMs, type UpgradeClusterInput } from './lib/input.js';
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
        if (isCancellation(err)) throw err;
        const p = problemOf(err, CONTROL_ATTEMPTS);
        const lastSeen = p.details?.lastSeen;
        if (p.type === GATE_TIMEOUT && typeof lastSeen === 'string')
          this.state.progress.gate.detail = lastSeen;
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
        if (d.action === 'skip') return;
      }
    }
  }
}
