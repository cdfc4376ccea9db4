// What the WebGPU provider would run on, found before creating a session: onnxruntime-node 1.30 does
// not expose Dawn's adapter (no adapter info in ort.env.webgpu, the session or its logs), so on Linux
// it is read from the same Vulkan loader Dawn uses (`vulkaninfo --summary`, from vulkan-tools), else
// inferred from the GPU device nodes. Elsewhere it is unknown and the timing probe decides.
import { execFile } from 'node:child_process';
import fs from 'node:fs';

/** Vulkan's physical device types, plus 'none' (no Vulkan at all) and 'unknown' (not identified). */
export type AdapterKind = 'discrete' | 'integrated' | 'virtual' | 'other' | 'cpu' | 'none' | 'unknown';

export interface GpuAdapter {
  kind: AdapterKind;
  /** Device name as the driver reports it, or what is known instead. */
  name: string;
  /** Driver and its version, when known (e.g. "Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)"). */
  driver?: string;
}

/** Software rasterisers (lavapipe/llvmpipe, SwiftShader) report a CPU device type; none means no adapter. */
export function isUsableGpu(adapter: GpuAdapter): boolean {
  return adapter.kind !== 'cpu' && adapter.kind !== 'none';
}

export function describeAdapter(adapter: GpuAdapter): string {
  return adapter.driver ? `${adapter.name}, ${adapter.driver}` : adapter.name;
}

const VULKAN_KINDS: Record<string, AdapterKind> = {
  PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: 'discrete',
  PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: 'integrated',
  PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: 'virtual',
  PHYSICAL_DEVICE_TYPE_OTHER: 'other',
  PHYSICAL_DEVICE_TYPE_CPU: 'cpu',
};

// Dawn asks for a high-performance adapter: discrete before integrated before the rest, CPU last.
const PREFERENCE: AdapterKind[] = ['discrete', 'integrated', 'virtual', 'other', 'cpu'];

/** The devices of `vulkaninfo --summary`, best first in the order Dawn prefers them. */
export function parseVulkanSummary(text: string): GpuAdapter[] {
  const devices: GpuAdapter[] = [];
  for (const section of text.split(/^GPU\d+:\s*$/m).slice(1)) {
    const field = (name: string) => new RegExp(`^\\s*${name}\\s*=\\s*(.+?)\\s*$`, 'm').exec(section)?.[1];
    const type = field('deviceType');
    const name = field('deviceName');
    if (!type || !name) continue;
    devices.push({ kind: VULKAN_KINDS[type] ?? 'other', name, driver: field('driverInfo') ?? field('driverName') });
  }
  return devices.sort((a, b) => PREFERENCE.indexOf(a.kind) - PREFERENCE.indexOf(b.kind));
}

/**
 * Whether the Vulkan loader Dawn dlopens can be loaded: process.dlopen runs the same dynamic-loader
 * search; a library that loads but is no Node addon answers "did not self-register". Checking first
 * spares users Dawn's "Couldn't load Vulkan" warning, which it writes to stderr itself.
 */
function vulkanLoaderProblem(): string | undefined {
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, 'libvulkan.so.1');
    return undefined;
  } catch (e) {
    const message = (e as Error).message;
    return /self-register/.test(message) ? undefined : `the Vulkan loader (libvulkan.so.1) cannot be loaded: ${message.split('\n')[0]}`;
  }
}

function vulkaninfoSummary(): Promise<{ stdout: string; missing: boolean; failed?: string }> {
  return new Promise((resolve) => {
    execFile('vulkaninfo', ['--summary'], { timeout: 10_000, maxBuffer: 4 << 20 }, (error, stdout, stderr) => {
      const code = (error as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT') resolve({ stdout: '', missing: true });
      else if (error && !/GPU\d+:/.test(stdout)) resolve({ stdout, missing: false, failed: (stderr || error.message).trim().split('\n').pop() });
      else resolve({ stdout, missing: false });
    });
  });
}

/** Device nodes through which a hardware GPU driver is reached (DRM render nodes, NVIDIA's nodes). */
function gpuDeviceNodes(): string[] {
  const list = (dir: string, pattern: RegExp) => {
    try {
      return fs.readdirSync(dir).filter((f) => pattern.test(f)).map((f) => `${dir}/${f}`);
    } catch {
      return [];
    }
  };
  return [...list('/dev/dri', /^renderD\d+$/), ...list('/dev', /^nvidia\d+$/)];
}

async function linuxAdapter(): Promise<GpuAdapter> {
  const loaderProblem = vulkanLoaderProblem();
  if (loaderProblem) return { kind: 'none', name: loaderProblem };
  const info = await vulkaninfoSummary();
  if (!info.missing) {
    const [best] = parseVulkanSummary(info.stdout);
    return best ?? { kind: 'none', name: `no Vulkan device${info.failed ? ` (vulkaninfo: ${info.failed})` : ''}` };
  }
  const nodes = gpuDeviceNodes();
  if (nodes.length === 0) {
    return { kind: 'cpu', name: 'no GPU device (/dev/dri/renderD*, /dev/nvidia*): only a software Vulkan driver can answer' };
  }
  return { kind: 'unknown', name: `a GPU device (${nodes.join(', ')}), not identified (vulkaninfo from vulkan-tools is not installed)` };
}

let known: Promise<GpuAdapter> | undefined;

/** The adapter Dawn would pick, looked up once per process (the hardware does not change under us). */
export function webGpuAdapter(platform: NodeJS.Platform = process.platform): Promise<GpuAdapter> {
  if (platform !== 'linux') return Promise.resolve({ kind: 'unknown', name: `the ${platform} default adapter` });
  known ??= linuxAdapter();
  return known;
}
