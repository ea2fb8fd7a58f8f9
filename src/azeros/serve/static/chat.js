// azeros web chat: record or upload audio, send it with an optional instruction to
// /v1/chat/completions (OpenAI format, streamed), keep the conversation for the next turn.
"use strict";

const $ = (id) => document.getElementById(id);
const RATE = 16000;  // what the model hears; the browser resamples, the server checks

const state = {
  model: null,
  history: [],      // OpenAI messages of this conversation, sent whole each turn
  audio: null,      // {base64, seconds, url} of the audio to send next
  recorder: null,   // {context, stream, node, chunks} while recording
  answering: null,  // the AbortController of the answer being streamed
};

function setStatus(text) { $("status").textContent = text; }

// A failure the user must see: in the conversation, where they are looking, not only in the status line.
function showError(text) {
  bubble("assistant error", text);
  setStatus("error");
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

// ---------------------------------------------------------------- audio: capture and encoding

// Collects the microphone's raw samples on the audio thread and posts them here.
const CAPTURE_WORKLET = `
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    if (inputs[0].length) this.port.postMessage(inputs[0][0].slice());
    return true;
  }
}
registerProcessor("capture", Capture);`;

async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const context = new AudioContext();
  const module = URL.createObjectURL(new Blob([CAPTURE_WORKLET], { type: "application/javascript" }));
  await context.audioWorklet.addModule(module);
  const node = new AudioWorkletNode(context, "capture");
  const chunks = [];
  node.port.onmessage = (event) => chunks.push(event.data);
  context.createMediaStreamSource(stream).connect(node);
  state.recorder = { context, stream, node, chunks };
  $("record").textContent = "■ Stop";
  $("record").classList.add("recording");
  setStatus("recording…");
}

async function stopRecording() {
  const { context, stream, node, chunks } = state.recorder;
  state.recorder = null;
  node.disconnect();
  stream.getTracks().forEach((track) => track.stop());
  const samples = concat(chunks);
  const rate = context.sampleRate;
  await context.close();
  $("record").textContent = "● Record";
  $("record").classList.remove("recording");
  await useSamples(samples, rate, "recording");
}

function concat(chunks) {
  const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) { out.set(c, offset); offset += c.length; }
  return out;
}

async function resample(samples, rate) {
  if (rate === RATE) return samples;
  const length = Math.max(1, Math.round(samples.length * RATE / rate));
  const offline = new OfflineAudioContext(1, length, RATE);
  const buffer = offline.createBuffer(1, samples.length, rate);
  buffer.copyToChannel(samples, 0);
  const source = offline.createBufferSource();
  source.buffer = buffer;
  source.connect(offline.destination);
  source.start();
  return (await offline.startRendering()).getChannelData(0);
}

function wavBytes(samples) {  // 16-bit PCM mono wav at RATE
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, RATE, true); view.setUint32(28, RATE * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, samples.length * 2, true);
  samples.forEach((x, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, x)) * 0x7fff, true));
  return new Uint8Array(view.buffer);
}

function base64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

async function useSamples(samples, rate, what) {
  const mono16k = await resample(samples, rate);
  const wav = wavBytes(mono16k);
  if (state.audio) URL.revokeObjectURL(state.audio.url);
  state.audio = { base64: base64(wav), seconds: mono16k.length / RATE, url: URL.createObjectURL(new Blob([wav], { type: "audio/wav" })) };
  $("audio-status").textContent = `${what}: ${state.audio.seconds.toFixed(1)} s`;
  $("preview").src = state.audio.url;
  $("preview").hidden = false;
  $("clear-audio").hidden = false;
  setStatus("ready");
}

async function useFile(file) {
  // Decoded by the browser (any format it plays), sent as 16 kHz wav.
  const context = new AudioContext();
  try {
    const decoded = await context.decodeAudioData(await file.arrayBuffer());
    const channels = [...Array(decoded.numberOfChannels).keys()].map((c) => decoded.getChannelData(c));
    const mono = channels[0].map((_, i) => channels.reduce((sum, ch) => sum + ch[i], 0) / channels.length);
    await useSamples(mono, decoded.sampleRate, file.name);
  } catch (error) {
    showError(`cannot read ${file.name}: ${error.message}`);
  } finally {
    await context.close();
  }
}

function clearAudio() {
  if (state.audio) URL.revokeObjectURL(state.audio.url);
  state.audio = null;
  $("audio-status").textContent = "no audio";
  $("preview").hidden = true;
  $("clear-audio").hidden = true;
  $("file").value = "";
}

// ---------------------------------------------------------------- conversation

function bubble(role, text, audioUrl) {
  const div = document.createElement("div");
  div.className = `message ${role}`;
  const span = document.createElement("span");
  span.className = "text";
  span.textContent = text;
  div.appendChild(span);
  $("hint").hidden = true;
  if (audioUrl) {
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.src = audioUrl;
    div.appendChild(audio);
  }
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

async function* serverEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data === "[DONE]") return;
      if (data) yield JSON.parse(data);
    }
  }
}

function setAnswering(controller) {
  state.answering = controller;
  $("send").hidden = Boolean(controller);
  $("stop").hidden = !controller;
}

async function send(event) {
  event.preventDefault();
  if (state.answering) return;
  const text = $("instruction").value.trim();
  if (!state.audio && !text) { setStatus("record or upload audio, or type something"); return; }
  const content = [];
  if (state.audio) content.push({ type: "input_audio", input_audio: { data: state.audio.base64, format: "wav" } });
  if (text) content.push({ type: "text", text });
  const userMessage = { role: "user", content };
  bubble("user", text || "(spoken)", state.audio && state.audio.url);
  const answer = bubble("assistant", "");
  const answerText = answer.querySelector(".text");
  let reply = "";
  const conversation = state.history;  // New chat while answering starts another; this turn stays in its own
  const request = { model: state.model, messages: [...conversation, userMessage], stream: true };
  if ($("speak").checked) request.modalities = ["text", "audio"];
  const controller = new AbortController();
  setAnswering(controller);
  setStatus("answering…");
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(request), signal: controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
    }
    for await (const chunk of serverEvents(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices[0].delta;
      if (delta.content) { reply += delta.content; answerText.textContent = reply; }
      if (delta.audio) {
        const player = document.createElement("audio");
        player.controls = true;
        player.src = `data:audio/wav;base64,${delta.audio.data}`;
        answer.appendChild(player);
        player.play().catch(() => {});
      }
      $("log").scrollTop = $("log").scrollHeight;
    }
    endTurn(conversation, userMessage, reply, "ready");
  } catch (error) {
    if (controller.signal.aborted) {  // Stop: keep what came; closing the stream ends its generation
      answer.classList.add("stopped");
      endTurn(conversation, userMessage, reply, "stopped");
    } else {
      answer.classList.add("error");
      answerText.textContent = error.message;
      setStatus("error");
    }
  } finally {
    setAnswering(null);
  }
}

function endTurn(conversation, userMessage, reply, status) {  // the turn joins its conversation; the composer empties
  conversation.push(userMessage, { role: "assistant", content: reply });
  $("instruction").value = "";
  clearAudio();
  setStatus(status);
}

function sendOnEnter(event) {  // Shift+Enter writes a new line; Enter while composing (IME) is not a send
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
}

function newChat() {
  if (state.answering) state.answering.abort();
  state.history = [];
  $("log").replaceChildren($("hint"));
  $("hint").hidden = false;
  clearAudio();
  setStatus("ready");
}

async function init() {
  const health = await (await fetch("/health")).json();
  state.model = health.model;
  $("model").textContent = health.model;
  $("speak-option").hidden = !health.speak;
  $("record").addEventListener("click", () => (state.recorder ? stopRecording() : startRecording()).catch((e) => showError(`microphone: ${e.message}`)));
  $("file").addEventListener("change", () => $("file").files[0] && useFile($("file").files[0]));
  $("clear-audio").addEventListener("click", clearAudio);
  $("composer").addEventListener("submit", send);
  $("instruction").addEventListener("keydown", sendOnEnter);
  $("stop").addEventListener("click", () => state.answering.abort());
  $("new-chat").addEventListener("click", newChat);
}

init();
