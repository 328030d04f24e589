// The four panels of the prototype — CharacterPanel | ChatPanel | MediaPanel, with CharacterEditor
// and Settings as overlays. On a phone one panel shows at a time, chosen in a bottom bar.
import { useCallback, useEffect, useState } from 'react';
import { api, type Character, type Health } from './api/client';
import { LangContext, resolveLang, strings, type Lang } from './i18n';
import { CharacterPanel } from './components/CharacterPanel';
import { ChatPanel } from './components/ChatPanel';
import { MediaPanel } from './components/MediaPanel';
import { CharacterEditor } from './components/CharacterEditor';
import { SettingsPanel } from './components/SettingsPanel';
import { Welcome, WELCOMED_KEY } from './components/Welcome';

type Tab = 'characters' | 'chat' | 'media';

// The page's address names the character and chat: /ui/c/{character}/chat/{chat}.
interface Route {
  characterId: string | null;
  chatId: string | null;
}
function parseRoute(path: string): Route {
  const m = path.match(/^\/ui\/c\/([^/]+)(?:\/chat\/([^/]+))?\/?$/);
  return { characterId: m ? decodeURIComponent(m[1]) : null, chatId: m?.[2] ? decodeURIComponent(m[2]) : null };
}
function routePath(characterId: string, chatId?: string | null): string {
  return `/ui/c/${encodeURIComponent(characterId)}${chatId ? `/chat/${encodeURIComponent(chatId)}` : ''}`;
}

export function App() {
  const [lang, setLang] = useState<Lang>(resolveLang('auto'));
  const [characters, setCharacters] = useState<Character[]>([]);
  // The first run (no characters, not welcomed in this browser yet): the welcome screen instead.
  const [loaded, setLoaded] = useState(false);
  const [welcomed, setWelcomed] = useState(() => {
    try {
      return localStorage.getItem(WELCOMED_KEY) === '1';
    } catch {
      return false;
    }
  });
  const [route] = useState(() => parseRoute(window.location.pathname));
  const [selectedId, setSelectedId] = useState<string | null>(route.characterId);
  const [routeChatId, setRouteChatId] = useState<string | null>(route.chatId);
  const [editing, setEditing] = useState<Character | 'new' | null>(null);
  const [showSettings, setShowSettings] = useState(false);
  // The person's name (chat.user_name): {{user}} in greetings is filled in when shown.
  const [userName, setUserName] = useState('User');
  const [health, setHealth] = useState<Health | null>(null);
  const [tab, setTab] = useState<Tab>(route.characterId ? 'chat' : 'characters');
  const [mediaVersion, setMediaVersion] = useState(0);
  const t = strings[lang];

  const reload = useCallback(async () => {
    setCharacters(await api.characters());
    setLoaded(true);
  }, []);
  const refreshHealth = useCallback(async () => {
    try {
      setHealth(await api.health());
    } catch {
      setHealth(null);
    }
  }, []);

  useEffect(() => {
    reload();
    refreshHealth();
    api
      .settings()
      .then((s) => {
        setLang(resolveLang(s.ui?.language));
        setUserName(String(s.chat?.user_name ?? 'User'));
      })
      .catch(() => {});
    const timer = setInterval(refreshHealth, 15000);
    return () => clearInterval(timer);
  }, [reload, refreshHealth]);

  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);

  const selected = characters.find((c) => c.id === selectedId) ?? null;
  const llm = health?.components.llm;

  const select = (id: string) => {
    if (id !== selectedId) {
      setSelectedId(id);
      setRouteChatId(null);
      window.history.pushState(null, '', routePath(id));
    }
    setTab('chat');
  };

  // The chat panel shows a chat: the address names it (the first one of a character replaces the
  // character-only address; switching chats is a step back/forward can undo).
  const chatShown = useCallback((chatId: string) => {
    const here = parseRoute(window.location.pathname);
    if (!here.characterId || here.chatId === chatId) return;
    setRouteChatId(chatId);
    const path = routePath(here.characterId, chatId);
    if (here.chatId) window.history.pushState(null, '', path);
    else window.history.replaceState(null, '', path);
  }, []);

  useEffect(() => {
    const onPop = () => {
      const r = parseRoute(window.location.pathname);
      setSelectedId(r.characterId);
      setRouteChatId(r.chatId);
      setTab(r.characterId ? 'chat' : 'characters');
    };
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  return (
    <LangContext.Provider value={t}>
      <div className="flex h-full flex-col">
        <header className="flex items-center gap-3 border-b border-zinc-800 px-4 py-2">
          <h1 className="text-lg font-semibold text-pink-400">MyCandyLocal</h1>
          {llm && llm.state !== 'ready' && (
            <button
              className="truncate rounded-full bg-amber-500/15 px-3 py-1 text-xs text-amber-300"
              onClick={() => {
                setShowSettings(true);
                refreshHealth();  // What the panel shows is current, not up to 15 s old.
              }}
              data-testid="llm-warning"
              title={llm.detail}
            >
              {t.components.llm}: {t.states[llm.state]}
            </button>
          )}
          <div className="flex-1" />
          <button
            className="rounded-lg px-3 py-1.5 text-sm text-zinc-300 hover:bg-zinc-800"
            onClick={() => {
                setShowSettings(true);
                refreshHealth();  // What the panel shows is current, not up to 15 s old.
              }}
            data-testid="open-settings"
          >
            ⚙ {t.settings}
          </button>
        </header>
        {loaded && !welcomed && characters.length === 0 ? (
          <Welcome
            onModelChanged={refreshHealth}
            onDone={(name) => {
              if (name) setUserName(name);
              setWelcomed(true);
              refreshHealth();
            }}
          />
        ) : (
        <>
        <main className="flex min-h-0 flex-1">
          <aside
            aria-label={t.characters}
            className={`${tab === 'characters' ? 'flex' : 'hidden'} w-full flex-col border-r border-zinc-800 md:flex md:w-72 md:shrink-0`}
          >
            <CharacterPanel
              characters={characters}
              userName={userName}
              selectedId={selectedId}
              onSelect={select}
              onCreate={() => setEditing('new')}
              onImported={async (ids) => {
                await reload();
                if (ids.length) select(ids[ids.length - 1]);
              }}
              onDeleted={async (id) => {
                if (id === selectedId) {
                  setSelectedId(null);
                  window.history.pushState(null, '', '/ui/');
                }
                await reload();
              }}
            />
          </aside>
          <section className={`${tab === 'chat' ? 'flex' : 'hidden'} min-w-0 flex-1 flex-col md:flex`}>
            <ChatPanel
              character={selected}
              userName={userName}
              health={health}
              routeChatId={routeChatId}
              onChatShown={chatShown}
              onEdit={() => selected && setEditing(selected)}
              onActivity={() => {
                reload();
                setMediaVersion((v) => v + 1);
              }}
            />
          </section>
          <aside
            aria-label={t.media}
            className={`${tab === 'media' ? 'flex' : 'hidden'} w-full flex-col border-l border-zinc-800 lg:flex lg:w-80 lg:shrink-0`}
          >
            <MediaPanel character={selected} version={mediaVersion} />
          </aside>
        </main>
        <nav className="grid grid-cols-3 border-t border-zinc-800 md:hidden" data-testid="tabbar">
          {(['characters', 'chat', 'media'] as Tab[]).map((k) => (
            <button
              key={k}
              className={`py-3 text-sm ${tab === k ? 'text-pink-400' : 'text-zinc-400'}`}
              onClick={() => setTab(k)}
              data-testid={`tab-${k}`}
            >
              {t[k]}
            </button>
          ))}
        </nav>
        </>
        )}
      </div>
      {editing && (
        <CharacterEditor
          character={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={async (c) => {
            await reload();
            setEditing(null);
            select(c.id);
          }}
        />
      )}
      {showSettings && (
        <SettingsPanel
          health={health}
          onClose={() => setShowSettings(false)}
          onSaved={(s) => {
            setLang(resolveLang(s.ui?.language));
            setUserName(String(s.chat?.user_name ?? 'User'));
            refreshHealth();
          }}
        />
      )}
    </LangContext.Provider>
  );
}
