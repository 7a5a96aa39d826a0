// framefarm's bridge to Remotion: one command per process, run by Node.js from the
// PROJECT's folder, using the project's own @remotion/bundler and @remotion/renderer
// (framefarm ships no Remotion code; the project brings it, with its licence).
//
//   node bridge.mjs <command>      the request is one JSON object on stdin
//
// Everything for framefarm goes to the channel, the file descriptor FRAMEFARM_BRIDGE_FD
// names (Remotion and Chromium log to stdout and stderr, which framefarm keeps only as
// the tail of an error): one JSON object a line,
//   {"type": "progress", "done": N}
//   {"type": "frame", "frame": N, "size": BYTES}   followed by BYTES of PNG, in frame order
//   {"type": "result", ...}                       the command's answer, last
//   {"type": "error", "step": "...", "message": "...", "issues": [...]}
// and the exit code is 0 only after a result.

import fs from 'node:fs';
import path from 'node:path';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// The marker the props check (props-check.js, bundled with the project) puts in the errors
// it throws inside the page, around base64 JSON, so it survives Remotion's wrapping.
const MARKER = /FRAMEFARM_ERROR<([A-Za-z0-9+/=]+)>/;

const send = (message, payload) => {
  const line = Buffer.from(JSON.stringify(message) + '\n');
  writeAll(payload ? Buffer.concat([line, payload]) : line);
};

const CHANNEL = Number(process.env.FRAMEFARM_BRIDGE_FD ?? 3);

const writeAll = (buffer) => {
  let offset = 0;
  while (offset < buffer.length) {
    offset += fs.writeSync(CHANNEL, buffer, offset, buffer.length - offset);
  }
};

class StepError extends Error {
  constructor(step, message, issues = null, available = null) {
    super(message);
    this.step = step;
    this.issues = issues;
    this.available = available;
  }
}

const readRequest = () => JSON.parse(fs.readFileSync(0, 'utf8') || '{}');

// The project's own packages, resolved from its folder (never framefarm's).
const projectRequire = (projectDir) => {
  const require = createRequire(path.join(projectDir, 'package.json'));
  const load = (name) => {
    try {
      return require(name);
    } catch (error) {
      throw new StepError(
        'project',
        `cannot load ${name} from the project's dependencies (${error.code ?? error.message}); ` +
          `add it to the project's package.json`,
      );
    }
  };
  return load;
};

// Errors thrown in the page by props-check.js carry their details behind MARKER.
const pageError = (error, step) => {
  const text = String(error?.stack ?? error?.message ?? error);
  const found = MARKER.exec(text);
  if (found) {
    const detail = JSON.parse(Buffer.from(found[1], 'base64').toString('utf8'));
    return new StepError(detail.step, detail.message, detail.issues ?? null, detail.available ?? null);
  }
  return new StepError(step, firstLines(error?.message ?? text));
};

// What a failed bundle says, as the user's compiler would: esbuild's "file:line:col:
// ERROR: ..." lines and webpack's unresolved modules, with paths relative to the project
// (and without the stacks of the bundler's own code around them).
const compileErrors = (message, projectDir) => {
  const lines = String(message).split('\n');
  const wanted = lines.filter((line) => /:\d+:\d+: (ERROR|error):/.test(line) ||
    /Module not found|Can't resolve|SyntaxError/.test(line));
  const kept = wanted.length ? wanted
    : lines.filter((line) => !/^\s+at /.test(line) && line.trim() && line !== 'undefined');
  return [...new Set(kept)].slice(0, 12).join('\n').split(projectDir + path.sep).join('');
};

const firstLines = (text, lines = 12) => String(text).split('\n').slice(0, lines).join('\n');

const chromium = (request) => ({
  browserExecutable: request.browser,
  // Debian's Chromium is the full browser: the new headless mode (the old one is gone
  // from it). Remotion adds --no-sandbox itself, needed as root in a container.
  chromeMode: 'chrome-for-testing',
  chromiumOptions: {headless: true},
  logLevel: 'error',
  timeoutInMilliseconds: request.timeoutMs ?? 30000,
});

const openBrowser = async (renderer, request) =>
  renderer.openBrowser('chrome', {
    browserExecutable: request.browser,
    chromeMode: 'chrome-for-testing',
    chromiumOptions: chromium(request).chromiumOptions,
    logLevel: 'error',
  });

// props-check.js logs which compositions declare a schema; the browser's log brings it.
const schemaLog = (schemas) => (log) => {
  const found = /^FRAMEFARM_SCHEMAS (.*)$/.exec(log.text ?? '');
  if (found) Object.assign(schemas, JSON.parse(found[1]));
};

const select = async (renderer, request, puppeteerInstance, schemas = {}) => {
  try {
    return await renderer.selectComposition({
      ...chromium(request),
      serveUrl: request.serveUrl,
      id: request.composition,
      inputProps: request.props ?? {},
      puppeteerInstance,
      onBrowserLog: schemaLog(schemas),
    });
  } catch (error) {
    throw pageError(error, 'composition');
  }
};

const describe = (composition) => ({
  id: composition.id,
  width: composition.width,
  height: composition.height,
  fps: composition.fps,
  durationInFrames: composition.durationInFrames,
  defaultProps: composition.defaultProps ?? {},
  props: composition.props ?? {},
});

const withBrowser = async (request, work) => {
  const load = projectRequire(request.projectDir);
  const renderer = load('@remotion/renderer');
  let browser;
  try {
    browser = await openBrowser(renderer, request);
  } catch (error) {
    throw new StepError('browser', `cannot start Chromium (${request.browser}): ${firstLines(error.message, 4)}`);
  }
  try {
    return await work(renderer, browser);
  } finally {
    await browser.close({silent: true}).catch(() => {});
  }
};

const commands = {
  // Bundle the project once (webpack, Remotion's config) into outDir, with framefarm's
  // props check appended to the bundle's entries.
  async bundle(request) {
    const load = projectRequire(request.projectDir);
    const {bundle} = load('@remotion/bundler');
    const modules = path.join(request.projectDir, 'node_modules');
    let last = -1;
    try {
      const serveUrl = await bundle({
        entryPoint: request.entryPoint,
        outDir: request.outDir,
        rootDir: request.projectDir,
        publicDir: path.join(request.projectDir, 'public'),
        enableCaching: false,
        onProgress: (percent) => {
          if (percent !== last) {
            last = percent;
            send({type: 'progress', done: percent});
          }
        },
        webpackOverride: (config) => ({
          ...config,
          entry: [...config.entry, path.join(HERE, 'props-check.js')],
          // props-check.js lives in framefarm's package: let it find the project's
          // `remotion` (the same file, so the same module, as the project's own import).
          resolve: {...config.resolve, modules: [...(config.resolve?.modules ?? ['node_modules']), modules]},
        }),
      });
      return {serveUrl};
    } catch (error) {
      throw new StepError('bundle', compileErrors(error.message, request.projectDir));
    }
  },

  async compositions(request) {
    return withBrowser(request, async (renderer, browser) => {
      const schemas = {};
      let list;
      try {
        list = await renderer.getCompositions(request.serveUrl, {
          ...chromium(request),
          inputProps: {},
          puppeteerInstance: browser,
          onBrowserLog: schemaLog(schemas),
        });
      } catch (error) {
        throw pageError(error, 'compositions');
      }
      return {
        compositions: list.map((c) => ({...describe(c), hasSchema: schemas[c.id] ?? null})),
      };
    });
  },

  // Select the composition with the input props: props-check.js validates them against
  // its zod schema first (Remotion itself does not when rendering).
  async describe(request) {
    return withBrowser(request, async (renderer, browser) => {
      const schemas = {};
      const composition = await select(renderer, request, browser, schemas);
      return {...describe(composition), hasSchema: schemas[composition.id] ?? null};
    });
  },

  // Frames [start, end) as PNG or JPEG (imageFormat), sent in order on the channel;
  // framefarm encodes them. With audioOutput, the range's sound as WAV too.
  async frames(request) {
    return withBrowser(request, async (renderer, browser) => {
      const composition = await select(renderer, request, browser);
      const [start, end] = request.frames;
      if (!(start >= 0 && end <= composition.durationInFrames && start < end)) {
        throw new StepError('render', `frames ${start}-${end} are not in the composition's 0-${composition.durationInFrames}`);
      }
      const pending = new Map();
      let next = start;
      let rendered;
      try {
        rendered = await renderer.renderFrames({
          ...chromium(request),
          serveUrl: request.serveUrl,
          composition,
          inputProps: request.props ?? {},
          puppeteerInstance: browser,
          frameRange: [start, end - 1],
          imageFormat: request.imageFormat ?? 'png',
          jpegQuality: request.imageFormat === 'jpeg' ? request.jpegQuality : undefined,
          outputDir: null,
          scale: request.scale ?? 1,
          concurrency: request.concurrency ?? 1,
          muted: !request.audioOutput,
          onStart: () => {},
          onFrameUpdate: () => {},
          onFrameBuffer: (buffer, frame) => {
            pending.set(frame, buffer);
            while (pending.has(next)) {
              const image = pending.get(next);
              pending.delete(next);
              send({type: 'frame', frame: next, size: image.length}, image);
              next += 1;
            }
          },
        });
      } catch (error) {
        throw pageError(error, 'render');
      }
      if (next !== end) {
        throw new StepError('render', `Remotion delivered frames ${start}-${next}, not ${start}-${end}`);
      }
      if (request.audioOutput) {
        // The range's sound, mixed from the audio the pass over its frames collected
        // (Remotion's own renderFrames -> stitchFramesToVideo pipeline): no second pass.
        try {
          await renderer.stitchFramesToVideo({
            assetsInfo: rendered.assetsInfo,
            fps: composition.fps,
            width: composition.width,
            height: composition.height,
            codec: 'wav',
            outputLocation: request.audioOutput,
            enforceAudioTrack: true,
            force: true,
            logLevel: 'error',
          });
        } catch (error) {
          throw pageError(error, 'audio');
        }
      }
      return {frames: end - start, width: Math.round(composition.width * (request.scale ?? 1)),
        height: Math.round(composition.height * (request.scale ?? 1))};
    });
  },

  // The sound of the whole composition (or a range) as 16-bit PCM WAV, silence included.
  async audio(request) {
    return withBrowser(request, async (renderer, browser) => {
      const composition = await select(renderer, request, browser);
      try {
        await renderer.renderMedia({
          ...chromium(request),
          serveUrl: request.serveUrl,
          composition,
          inputProps: request.props ?? {},
          puppeteerInstance: browser,
          codec: 'wav',
          outputLocation: request.output,
          frameRange: request.frames ? [request.frames[0], request.frames[1] - 1] : null,
          enforceAudioTrack: true,
          concurrency: request.concurrency ?? 1,
          overwrite: true,
          onProgress: ({renderedFrames}) => send({type: 'progress', done: renderedFrames}),
        });
      } catch (error) {
        throw pageError(error, 'audio');
      }
      return {output: request.output, frames: composition.durationInFrames};
    });
  },

  async still(request) {
    return withBrowser(request, async (renderer, browser) => {
      const composition = await select(renderer, request, browser);
      if (!(request.frame >= 0 && request.frame < composition.durationInFrames)) {
        throw new StepError('snapshot', `frame ${request.frame} is not in the composition's 0-${composition.durationInFrames - 1}`);
      }
      try {
        await renderer.renderStill({
          ...chromium(request),
          serveUrl: request.serveUrl,
          composition,
          inputProps: request.props ?? {},
          puppeteerInstance: browser,
          frame: request.frame,
          output: request.output,
          imageFormat: 'png',
          scale: request.scale ?? 1,
          overwrite: true,
        });
      } catch (error) {
        throw pageError(error, 'snapshot');
      }
      return {output: request.output, frame: request.frame};
    });
  },
};

const main = async () => {
  const name = process.argv[2];
  const command = commands[name];
  if (!command) {
    send({type: 'error', step: 'bridge', message: `unknown bridge command ${name}`});
    process.exit(2);
  }
  try {
    const result = await command(readRequest());
    send({type: 'result', ...result});
    process.exit(0);
  } catch (error) {
    send({
      type: 'error',
      step: error.step ?? name,
      message: error.step ? error.message : firstLines(error?.stack ?? error),
      issues: error.issues ?? null,
      available: error.available ?? null,
    });
    process.exit(1);
  }
};

main();
