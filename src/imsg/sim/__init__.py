"""The Messages simulator: chat.db files from Apple's DDL, written the way Messages writes them."""
