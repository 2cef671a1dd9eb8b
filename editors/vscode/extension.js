// Starts `oxdeai lsp` for .oxp files through vscode-languageclient, the client VS Code's
// own language extensions use. The command comes from the `oxdeai.command` setting.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("oxdeai").get("command");
  client = new LanguageClient(
    "oxdeai", "oxdeai",
    { command, args },
    { documentSelector: [{ scheme: "file", language: "oxp" }] },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
