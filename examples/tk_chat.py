"""A chat window on ohws and Tkinter: every ohws callback runs on the Tk thread.

    python examples/tk_chat.py [ws://host:port/path]

Without a URL it starts ohws's embedded echo server on loopback and connects to that.
"""

from __future__ import annotations

import sys
import tkinter as tk
from tkinter import scrolledtext
from typing import Any

import ohws
from ohws import webSocket


def start_echo_server() -> ohws.WebSocketServer:
    """The embedded server, echoing every message back."""
    server = webSocket.createWebSocketServer()
    server.on("messageReceive", lambda message: server.send(message.data, message.clientConnection))
    server.start({"serverIP": "127.0.0.1", "serverPort": 0}).result(10)
    return server


class ChatWindow:
    """URL field, connect/disconnect, message log and input line."""

    def __init__(self, root: tk.Tk, url: str) -> None:
        self.root = root
        self.dispatcher = ohws.TkDispatcher(root)  # callbacks below run on this (the Tk) thread
        self.ws: ohws.WebSocket | None = None
        root.title("ohws chat (Tk)")
        top = tk.Frame(root)
        top.pack(fill="x", padx=6, pady=6)
        self.url = tk.Entry(top, width=40)
        self.url.insert(0, url)
        self.url.pack(side="left", fill="x", expand=True)
        self.connect_button = tk.Button(top, text="Connect", command=self.connect)
        self.connect_button.pack(side="left", padx=4)
        self.disconnect_button = tk.Button(top, text="Disconnect", command=self.disconnect, state="disabled")
        self.disconnect_button.pack(side="left")
        self.log_view = scrolledtext.ScrolledText(root, height=14, width=60, state="disabled")
        self.log_view.pack(fill="both", expand=True, padx=6)
        bottom = tk.Frame(root)
        bottom.pack(fill="x", padx=6, pady=6)
        self.entry = tk.Entry(bottom)
        self.entry.pack(side="left", fill="x", expand=True)
        self.entry.bind("<Return>", lambda event: self.send())
        self.send_button = tk.Button(bottom, text="Send", command=self.send, state="disabled")
        self.send_button.pack(side="left", padx=4)

    def log(self, line: str) -> None:
        self.log_view.configure(state="normal")
        self.log_view.insert("end", line + "\n")
        self.log_view.see("end")
        self.log_view.configure(state="disabled")

    def connect(self) -> None:
        ws = webSocket.createWebSocket(dispatcher=self.dispatcher)
        ws.on("open", lambda err, value: self.opened())
        ws.on(
            "message",
            lambda err, data: self.log(f"server: {data!r}" if isinstance(data, bytes) else f"server: {data}"),
        )
        ws.on("close", lambda err, value: self.closed(value))
        ws.on("error", lambda err: self.log(f"error: {err.message}"))
        # Reconnect after a drop or a server restart; sends made meanwhile wait for the next open.
        ws.on(
            "reconnect",
            lambda info: self.log(f"reconnecting… (attempt {info.attempt} in {info.delay:.1f} s)"),
        )
        self.ws = ws
        self.connect_button.configure(state="disabled")
        self.log(f"connecting to {self.url.get()} ...")
        ws.connect(self.url.get(), {"reconnect": True}, lambda err, ok: err and self.connect_failed(err))

    def connect_failed(self, err: Any) -> None:
        self.connect_button.configure(state="normal")

    def opened(self) -> None:
        self.log("connected")
        self.disconnect_button.configure(state="normal")
        self.send_button.configure(state="normal")

    def closed(self, value: ohws.CloseResult) -> None:
        if self.ws is not None and self.ws.state is ohws.State.CONNECTING:
            self.log(f"connection lost: code {value.code} {value.reason}".rstrip())
            return  # a reconnect event follows; the buttons stay as they are
        self.log(f"closed: code {value.code} {value.reason}".rstrip())
        self.connect_button.configure(state="normal")
        self.disconnect_button.configure(state="disabled")
        self.send_button.configure(state="disabled")

    def disconnect(self) -> None:
        if self.ws is not None:
            self.ws.close()

    def send(self) -> None:
        text = self.entry.get()
        if self.ws is None or not text:
            return
        self.entry.delete(0, "end")
        self.log(f"you: {text}")
        self.ws.send(text, lambda err, ok: err and self.log(f"send failed: {err.message}"))


def main(argv: list[str]) -> int:
    server = None if len(argv) > 1 else start_echo_server()
    url = argv[1] if len(argv) > 1 else f"ws://127.0.0.1:{server.port}"  # type: ignore[union-attr]
    root = tk.Tk()
    ChatWindow(root, url)
    root.mainloop()
    if server is not None:
        server.stop().result(10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
