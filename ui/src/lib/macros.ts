// {{char}}/{{user}} (and <BOT>/<USER>) as the server fills them into prompts: messages keep them as
// written, so a new name applies to old greetings too.
export function fillMacros(text: string, charName: string, userName: string): string {
  if (!text.includes('{{') && !text.includes('<')) return text;
  return text
    .replace(/\{\{char\}\}|<BOT>/gi, () => charName)
    .replace(/\{\{user\}\}|<USER>/gi, () => userName);
}
