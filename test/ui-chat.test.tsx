// @vitest-environment happy-dom
// The chat view's daily use against a fake typed API: the chat list at once and the last chat
// reopened, copy, regenerate, rename, delete (asked first), export, a chat limited to one folder,
// the length counter and a refused question taken back, Stop keeping the partial answer, figures
// that mean something, and sources grouped by document.
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AnswerFiguresView, AnswerView, CitationView, MessageView } from '../electron/contract/types.ts';
import { QUESTION_MAX_CHARS, QuireRequestError } from '../electron/contract/types.ts';
import { ChatView } from '../renderer/views/ChatView.tsx';
import { fakeApi, folder, type Handlers } from './helpers/ui-fake-api.ts';

beforeEach(() => localStorage.clear());
afterEach(cleanup);

const folders = [folder({ id: 1, path: '/home/me/notes', state: 'done' }), folder({ id: 2, path: '/home/me/work', state: 'done' })];
// as a stored answer's figures come back (the fit's counts are not stored: null)
const figures: AnswerFiguresView = {
  contextPassages: 2,
  ttftMs: 40,
  reusedBlocks: 2,
  computedBlocks: 0,
  tokensPerSecond: 20,
  provider: 'cpu',
  mode: 'block/shared-prefix',
  passagesUsed: null,
  passagesDropped: null,
  passagesShortened: null,
  prefetched: null,
};
const cite = (ordinal: number, documentPath: string, title: string | null, page: number | null = null): CitationView => ({
  ordinal,
  passageId: 100 + ordinal,
  documentPath,
  title,
  page,
  quote: 'q',
});
const message = (id: number, role: 'user' | 'assistant', content: string, over: Partial<MessageView> = {}): MessageView => ({
  id,
  role,
  content,
  citations: [],
  figures: role === 'assistant' ? figures : null,
  stopped: false,
  ...over,
});
const answer = (args: { requestId: string }, over: Partial<AnswerView> = {}): AnswerView => ({
  requestId: args.requestId,
  chatId: 5,
  messageId: 50,
  answer: 'An answer.',
  citations: [],
  sources: [],
  figures,
  cancelled: false,
  ...over,
});

const CHATS = [
  { id: 7, title: 'Newest chat', updatedAt: 2, folderId: null },
  { id: 5, title: 'Roses', updatedAt: 1, folderId: null },
];

function renderChat(handlers: Handlers, modelReady = true) {
  const fake = fakeApi({ 'chats.list': () => CHATS, ...handlers });
  const open = vi.fn();
  render(<ChatView api={fake.api} modelReady={modelReady} folders={folders} onOpenPassage={open} onGo={() => undefined} />);
  return { ...fake, open };
}

const box = () => screen.getByLabelText('Ask a question') as HTMLTextAreaElement;
const type = (text: string) => fireEvent.change(box(), { target: { value: text } });
const lastAsk = (request: ReturnType<typeof vi.fn>) => request.mock.calls.filter((c) => c[0] === 'ask').at(-1)![1] as Record<string, unknown>;

describe('chat list', () => {
  it('shows the list as soon as it arrives and reopens the chat opened last', async () => {
    localStorage.setItem('quire.lastChat', '5');
    let list: (v: typeof CHATS) => void = () => undefined;
    const { request } = renderChat({
      'chats.list': () => new Promise((r) => (list = r)),
      'chats.messages': () => [message(1, 'user', 'What do roses need?'), message(2, 'assistant', 'Sun.')],
    });
    expect(screen.getByText('Loading chats…')).toBeTruthy();
    expect(screen.queryByText(/chats will appear/)).toBeNull();
    await act(async () => list(CHATS));
    expect(screen.getByRole('button', { name: 'Newest chat' })).toBeTruthy();
    await waitFor(() => expect(request).toHaveBeenCalledWith('chats.messages', { chatId: 5 }));
    expect(await screen.findByText('Sun.')).toBeTruthy();
    expect(screen.getByRole('heading', { name: 'Roses' })).toBeTruthy();
  });

  it('opens the most recent chat when none was remembered', async () => {
    const { request } = renderChat({ 'chats.messages': () => [] });
    await waitFor(() => expect(request).toHaveBeenCalledWith('chats.messages', { chatId: 7 }));
  });

  it('renames the open chat, exports it, and deletes it only once confirmed', async () => {
    localStorage.setItem('quire.lastChat', '5');
    let deleted = false;
    const clicks: string[] = [];
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicks.push(this.download);
    });
    const { request } = renderChat({
      'chats.messages': () => [message(1, 'user', 'q'), message(2, 'assistant', 'a')],
      'chats.update': (args: { title: string }) => ({ ...CHATS[1], title: args.title }),
      'chats.export': () => ({ fileName: 'Roses.md', markdown: '# Roses\n' }),
      'chats.delete': () => {
        deleted = true;
        return { deleted: true };
      },
      // after the delete the list is re-read, but that answer never comes: the chat must leave the list without it
      'chats.list': () => (deleted ? new Promise(() => undefined) : CHATS),
    });
    await screen.findByText('a');
    fireEvent.click(screen.getByRole('button', { name: 'Rename' }));
    fireEvent.change(screen.getByLabelText('Chat title'), { target: { value: 'Garden roses' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(request).toHaveBeenCalledWith('chats.update', { chatId: 5, title: 'Garden roses' }));

    fireEvent.click(screen.getByRole('button', { name: 'Export' }));
    await waitFor(() => expect(clicks).toEqual(['Roses.md']));
    click.mockRestore();

    fireEvent.click(screen.getByRole('button', { name: 'Delete' }));
    expect(screen.getByText('Delete this chat?')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(request).not.toHaveBeenCalledWith('chats.delete', expect.anything());
    fireEvent.click(screen.getByRole('button', { name: 'Delete' }));
    fireEvent.click(screen.getByRole('button', { name: 'Delete chat' }));
    await waitFor(() => expect(request).toHaveBeenCalledWith('chats.delete', { chatId: 5 }));
    expect(await screen.findByRole('heading', { name: 'New chat' })).toBeTruthy();
    const history = within(screen.getByRole('navigation', { name: 'Chat history' }));
    expect(history.getAllByRole('button').map((b) => b.textContent)).toEqual(['New chat', 'Newest chat']);
  });

  it('limits a new chat to one folder, and moves an open chat to another', async () => {
    const { request } = renderChat({
      'chats.list': () => [],
      ask: (args: { requestId: string }) => answer(args),
      'chats.update': () => ({ ...CHATS[1], folderId: 1 }),
    });
    await screen.findByText(/No chats yet/);
    fireEvent.change(screen.getByLabelText('Folders this chat searches'), { target: { value: '2' } });
    type('What is due?');
    fireEvent.keyDown(box(), { key: 'Enter' });
    await waitFor(() => expect(lastAsk(request)).toMatchObject({ question: 'What is due?', folderId: 2 }));
    expect(lastAsk(request).chatId).toBeUndefined();
    await screen.findByText('An answer.');
    fireEvent.change(screen.getByLabelText('Folders this chat searches'), { target: { value: '1' } });
    await waitFor(() => expect(request).toHaveBeenCalledWith('chats.update', { chatId: 5, folderId: 1 }));
  });
});

describe('answers', () => {
  it('copies an answer, and regenerates the last one in place', async () => {
    const writeText = vi.fn(async () => undefined);
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    localStorage.setItem('quire.lastChat', '5');
    let n = 0;
    const { request } = renderChat({
      'chats.messages': () => [message(1, 'user', 'First?'), message(2, 'assistant', 'One.'), message(3, 'user', 'Second?'), message(4, 'assistant', 'Two.')],
      ask: (args: { requestId: string }) => answer(args, { answer: `Two, again ${++n}.` }),
    });
    await screen.findByText('Two.');
    const copies = screen.getAllByRole('button', { name: 'Copy' });
    fireEvent.click(copies[1]);
    await waitFor(() => expect(writeText).toHaveBeenCalledWith('Two.'));
    expect(await screen.findByRole('button', { name: 'Copied' })).toBeTruthy();
    // only the last answer can be regenerated
    expect(screen.getAllByRole('button', { name: 'Regenerate' })).toHaveLength(1);
    fireEvent.click(screen.getByRole('button', { name: 'Regenerate' }));
    await waitFor(() => expect(lastAsk(request)).toMatchObject({ question: 'Second?', chatId: 5, regenerate: true }));
    expect(await screen.findByText('Two, again 1.')).toBeTruthy();
    expect(screen.queryByText('Two.')).toBeNull();
    expect(screen.getAllByText('Second?')).toHaveLength(1);
    expect(screen.getByText('One.')).toBeTruthy();
  });

  it('Stop keeps the partial answer and marks it stopped', async () => {
    let finish: (v: AnswerView) => void = () => undefined;
    let requestId = '';
    const { request, emit } = renderChat({
      'chats.list': () => [],
      ask: (args: { requestId: string }) => {
        requestId = args.requestId;
        return new Promise((r) => (finish = r));
      },
      'ask.cancel': () => ({ cancelled: true }),
    });
    type('Tell me everything');
    fireEvent.keyDown(box(), { key: 'Enter' });
    await waitFor(() => expect(requestId).not.toBe(''));
    act(() => emit('answer.text', { requestId, text: 'The first half' }));
    fireEvent.click(screen.getByRole('button', { name: 'Stop' }));
    await waitFor(() => expect(request).toHaveBeenCalledWith('ask.cancel', { requestId }));
    const fig = { ...figures, contextPassages: null, ttftMs: null, reusedBlocks: null, computedBlocks: null, tokensPerSecond: null, mode: null };
    await act(async () => finish(answer({ requestId }, { answer: 'The first half', cancelled: true, figures: fig })));
    expect(screen.getByText('The first half')).toBeTruthy();
    expect(screen.getByTestId('stopped').textContent).toBe('Stopped: the answer was cut short here.');
    expect(screen.getByTestId('readout').textContent).toBe('cpu'); // no zero figures
  });

  it('shows a stored stopped answer as stopped', async () => {
    localStorage.setItem('quire.lastChat', '5');
    renderChat({ 'chats.messages': () => [message(1, 'user', 'q'), message(2, 'assistant', 'Half', { stopped: true })] });
    expect((await screen.findByTestId('stopped')).textContent).toMatch(/^Stopped/);
  });

  it('figures mean something: a follow-up from passages already in the chat says so; "nothing found" shows none', async () => {
    localStorage.setItem('quire.lastChat', '5');
    renderChat({
      'chats.messages': () => [
        message(1, 'user', 'a?'),
        message(2, 'assistant', 'First.', { figures: { ...figures, contextPassages: 3, reusedBlocks: 2, computedBlocks: 1 } }),
        message(3, 'user', 'b?'),
        message(4, 'assistant', 'Follow-up.', { figures: { ...figures, contextPassages: 3, reusedBlocks: 0, computedBlocks: 0 } }),
        message(5, 'user', 'c?'),
        message(6, 'assistant', 'More.', { figures: { ...figures, contextPassages: 5, reusedBlocks: 1, computedBlocks: 1 } }),
        message(7, 'user', 'zzz?'),
        message(8, 'assistant', 'I could not find anything.', {
          figures: { ...figures, contextPassages: 0, ttftMs: 0, reusedBlocks: 0, computedBlocks: 0, tokensPerSecond: 0, mode: null },
        }),
      ],
    });
    await screen.findByText('I could not find anything.');
    const readouts = screen.getAllByTestId('readout').map((r) => r.textContent);
    expect(readouts).toEqual([
      'TTFT 40 ms · blocks 2 reused / 1 computed · 20.0 tokens/s · cpu · block/shared-prefix',
      'TTFT 40 ms · all 3 passages already in this chat · 20.0 tokens/s · cpu · block/shared-prefix',
      'TTFT 40 ms · blocks 1 reused / 1 computed (+3 already in this chat) · 20.0 tokens/s · cpu · block/shared-prefix',
    ]);
    expect(readouts.join(' ')).not.toMatch(/0 reused \/ 0 computed/);
  });

  it('groups sources by document, telling same-named files apart, with section and page', async () => {
    const { open } = renderChat({
      'chats.list': () => [],
      ask: (args: { requestId: string }) =>
        answer(args, {
          answer: 'Due Friday [1][2], and [3].',
          citations: [
            cite(1, '/home/me/notes/todo.md', 'Todo › Friday'),
            cite(2, '/home/me/work/todo.md', 'Todo'),
            cite(3, '/home/me/notes/todo.md', 'Todo › Later', 4),
          ],
        }),
    });
    type('What is due?');
    fireEvent.keyDown(box(), { key: 'Enter' });
    const list = await screen.findByRole('list', { name: 'Citations' });
    const docs = within(list).getAllByRole('listitem');
    expect(docs.map((d) => d.querySelector('.source-file')!.textContent)).toEqual(['notes/todo.md', 'work/todo.md']);
    expect(within(docs[0]).getAllByRole('button').map((b) => b.textContent)).toEqual(['[1] Friday', '[3] Later p. 4']);
    expect(docs[0].querySelector('.source-file')!.getAttribute('title')).toBe('/home/me/notes/todo.md');
    fireEvent.click(within(docs[0]).getByRole('button', { name: /Citation 3/ }));
    expect(open).toHaveBeenCalledWith(expect.objectContaining({ passageId: 103, ordinal: 3, page: 4, question: 'What is due?' }));
  });
});

describe('the question box', () => {
  it('counts characters near the limit and refuses past it in plain words', async () => {
    const { request } = renderChat({ 'chats.list': () => [] });
    type('x'.repeat(100));
    expect(screen.queryByTestId('question-counter')).toBeNull();
    type('x'.repeat(QUESTION_MAX_CHARS - 200));
    expect(screen.getByTestId('question-counter').textContent).toBe('3,800 / 4,000 characters');
    type('x'.repeat(QUESTION_MAX_CHARS + 120));
    expect(screen.getByRole('alert').textContent).toMatch(/^This question is too long: 4,120 characters, the limit is 4,000\./);
    expect((screen.getByRole('button', { name: 'Send' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.keyDown(box(), { key: 'Enter' });
    expect(request).not.toHaveBeenCalledWith('ask', expect.anything());
  });

  it('a refused question is not left in the chat: it goes back into the box, with the reason', async () => {
    const reason =
      'This question is too long for the model: with the answering instructions it takes 4200 tokens, and the model reads 4096 tokens in all, 256 of them kept for the answer. Shorten it by about 360 tokens.';
    renderChat({
      'chats.list': () => [],
      ask: () => Promise.reject(new QuireRequestError('invalid-arguments', reason)),
    });
    await screen.findByText(/No chats yet/);
    type('A very long question');
    fireEvent.keyDown(box(), { key: 'Enter' });
    expect((await screen.findByTestId('composer-error')).textContent).toBe(reason);
    expect(box().value).toBe('A very long question');
    expect(document.querySelector('.message')).toBeNull();
    expect(screen.getByRole('heading', { name: 'Ask about your documents' })).toBeTruthy();
  });
});

describe('prefetch while typing', () => {
  const prepares = (request: ReturnType<typeof vi.fn>) => request.mock.calls.filter((c) => c[0] === 'ask.prepare').map((c) => c[1]);
  const form = () => box().closest('form')!;

  it('prepares the last draft long enough to retrieve with, once typing pauses, where it will be asked; Enter asks as usual', async () => {
    let prepared: (r: { prepared: boolean }) => void = () => undefined;
    const { request } = renderChat({
      'chats.messages': () => [message(1, 'user', 'q'), message(2, 'assistant', 'a')],
      'ask.prepare': () => new Promise((r) => (prepared = r)),
      ask: (args: { requestId: string }) => answer(args, { chatId: 7, figures: { ...figures, prefetched: true } }),
    });
    await screen.findByText('a'); // chat 7 (the most recent) is open
    type('short q'); // below PREPARE_MIN_CHARS: never prepared
    type('What do roses');
    type('What do roses need?'); // each keystroke restarts the wait: only the last draft is prepared
    await waitFor(() => expect(prepares(request)).toEqual([{ question: 'What do roses need?', chatId: 7 }]));
    expect(form().dataset.prepared).toBe('false');
    await act(async () => prepared({ prepared: true }));
    expect(form().dataset.prepared).toBe('true');
    // an edit makes the prepared context another question's
    type('What do roses need? ');
    expect(form().dataset.prepared).toBe('true'); // same question once trimmed
    type('What do tulips need?');
    expect(form().dataset.prepared).toBe('false');
    fireEvent.keyDown(box(), { key: 'Enter' });
    await waitFor(() => expect(lastAsk(request)).toMatchObject({ question: 'What do tulips need?', chatId: 7 }));
    expect((await screen.findAllByTestId('readout')).at(-1)!.dataset.prefetched).toBe('true');
    expect(prepares(request)).toHaveLength(1); // the tulip draft was sent before its wait ended
  });

  it('a failed prepare changes nothing; a new chat over a folder prepares for that folder', async () => {
    const { request } = renderChat({
      'chats.list': () => [],
      'ask.prepare': () => Promise.reject(new QuireRequestError('unavailable', 'no model')),
    });
    await screen.findByText(/No chats yet/);
    fireEvent.change(screen.getByLabelText('Folders this chat searches'), { target: { value: '2' } });
    type('Which notes mention storms?');
    await waitFor(() => expect(prepares(request)).toEqual([{ question: 'Which notes mention storms?', folderId: 2 }]));
    expect(form().dataset.prepared).toBe('false');
    expect(screen.queryByRole('alert')).toBeNull();
  });
});
