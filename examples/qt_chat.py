"""A chat window on ohws and Qt (PySide6): every ohws callback runs on the Qt main thread.

    pip install ohws[qt]
    python examples/qt_chat.py [ws://host:port/path]

Without a URL it starts ohws's embedded echo server on loopback and connects to that.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

import ohws
from ohws import webSocket


def start_echo_server() -> ohws.WebSocketServer:
    """The embedded server, echoing every message back."""
    server = webSocket.createWebSocketServer()
    server.on("messageReceive", lambda message: server.send(message.data, message.clientConnection))
    server.start({"serverIP": "127.0.0.1", "serverPort": 0}).result(10)
    return server


class ChatWindow(QWidget):
    """URL field, connect/disconnect, message log and input line."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.dispatcher = ohws.QtDispatcher()  # callbacks below run on the Qt main thread
        self.ws: ohws.WebSocket | None = None
        self.setWindowTitle("ohws chat (Qt)")
        self.url = QLineEdit(url)
        self.connect_button = QPushButton("Connect")
        self.disconnect_button = QPushButton("Disconnect")
        self.disconnect_button.setEnabled(False)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.entry = QLineEdit()
        self.send_button = QPushButton("Send")
        self.send_button.setEnabled(False)
        top, bottom, layout = QHBoxLayout(), QHBoxLayout(), QVBoxLayout(self)
        for widget in (self.url, self.connect_button, self.disconnect_button):
            top.addWidget(widget)
        bottom.addWidget(self.entry)
        bottom.addWidget(self.send_button)
        layout.addLayout(top)
        layout.addWidget(self.log_view)
        layout.addLayout(bottom)
        self.connect_button.clicked.connect(self.connect_clicked)
        self.disconnect_button.clicked.connect(self.disconnect_clicked)
        self.send_button.clicked.connect(self.send)
        self.entry.returnPressed.connect(self.send)
        self.resize(520, 360)

    def log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def connect_clicked(self) -> None:
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
        self.connect_button.setEnabled(False)
        self.log(f"connecting to {self.url.text()} ...")
        ws.connect(
            self.url.text(), {"reconnect": True}, lambda err, ok: err and self.connect_button.setEnabled(True)
        )

    def opened(self) -> None:
        self.log("connected")
        self.disconnect_button.setEnabled(True)
        self.send_button.setEnabled(True)

    def closed(self, value: ohws.CloseResult) -> None:
        if self.ws is not None and self.ws.state is ohws.State.CONNECTING:
            self.log(f"connection lost: code {value.code} {value.reason}".rstrip())
            return  # a reconnect event follows; the buttons stay as they are
        self.log(f"closed: code {value.code} {value.reason}".rstrip())
        self.connect_button.setEnabled(True)
        self.disconnect_button.setEnabled(False)
        self.send_button.setEnabled(False)

    def disconnect_clicked(self) -> None:
        if self.ws is not None:
            self.ws.close()

    def send(self) -> None:
        text = self.entry.text()
        if self.ws is None or not text:
            return
        self.entry.clear()
        self.log(f"you: {text}")
        self.ws.send(text, lambda err, ok: err and self.log(f"send failed: {err.message}"))


def main(argv: list[str]) -> int:
    app = QApplication(argv)
    server = None if len(argv) > 1 else start_echo_server()
    url = argv[1] if len(argv) > 1 else f"ws://127.0.0.1:{server.port}"  # type: ignore[union-attr]
    window = ChatWindow(url)
    window.show()
    code = app.exec()
    if server is not None:
        server.stop().result(10)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
