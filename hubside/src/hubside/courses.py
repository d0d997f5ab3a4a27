"""nbgrader for the hub's courses (jh_courses), in every server and nbgrader command.

The deploy makes the exchange root's and each course's part of it its grader's, entered by the
course's students alone (tasks/courses.py), and writes which account grades which course
(courses.json). /etc/jupyter/nbgrader_config.py calls configure(). The exchange classes here are
nbgrader's own but for three things:
- they leave the exchange's root as root made it (nbgrader would make it writable by everyone);
- collecting takes, for each student, only folders that student owns: nbgrader only warns when
  bob submits a folder named as alice's, and then takes the newest, so bob could hand in work as
  alice or hide hers behind a later one;
- collecting copies a submission's files and folders only, not what its links point to (the
  grader copies: a link to the course's solutions would be collected as the student's work).
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import json
import os
import pwd
import shutil
import stat
from collections import defaultdict

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange import default
from nbgrader.utils import ignore_patterns


class RootsExchange:
    """The exchange's root is the deploy's (root's, 0755): checked, never changed."""

    def ensure_root(self):
        if not os.path.isdir(self.root):
            self.fail(f"The exchange {self.root} is missing: ask the hub's admins")


class Exchange(RootsExchange, default.Exchange):
    pass


class FetchAssignment(RootsExchange, default.ExchangeFetchAssignment):
    pass


class FetchFeedback(RootsExchange, default.ExchangeFetchFeedback):
    pass


class ReleaseAssignment(RootsExchange, default.ExchangeReleaseAssignment):
    pass


class ReleaseFeedback(RootsExchange, default.ExchangeReleaseFeedback):
    pass


class List(RootsExchange, default.ExchangeList):
    pass


class Submit(RootsExchange, default.ExchangeSubmit):
    pass


# submit names the submission by its time, then copies the files into it: a change this long
# after that time is a change made later.
CHANGE_SLACK = datetime.timedelta(minutes=5)


class Collect(RootsExchange, default.ExchangeCollect):
    """nbgrader 0.9.5's collect, each student's submissions being only the folders they own, each
    dated no earlier than its last change."""

    def init_src(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        # The student a glob, as nbgrader's (--student; "*": everyone's); what it matches is checked below.
        student_id = self.coursedir.student_id or "*"
        pattern = os.path.join(self.inbound_path, f"{student_id}+{self.coursedir.assignment_id}+*")
        by_student = defaultdict(list)
        self.redated = {}
        for path in glob.glob(pattern):
            record = self.owned_record(path)
            if record:
                by_student[record["username"]].append(record)
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            try:
                self.duedate = gradebook.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                self.duedate = None
        self.src_records = [self.chosen(records) for records in by_student.values()]

    def owned_record(self, path: str) -> dict | None:
        """nbgrader's record of a submission, if it is a folder of the student its name gives."""
        name = os.path.basename(path)
        parts = name.rsplit("+", 3)
        info = os.lstat(path)
        try:
            owner = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            owner = None
        if len(parts) < 3 or not stat.S_ISDIR(info.st_mode) or owner != parts[0]:
            self.log.warning("Not collected: %s is not a submission of %s (it is %s's)", name, parts[0], owner)
            return None
        try:
            record = self._path_to_record(path)
        except (ValueError, OverflowError):
            self.log.warning("Not collected: %s has no time of submission", name)
            return None
        # The student names the submission (its time too) and owns it: they may submit an empty
        # notebook before the due date and change it until the collect, or give any time. The
        # last change (ctime, which no user can set back) dates it when it is later.
        changed = last_change(path)
        if changed > record["timestamp"] + CHANGE_SLACK:
            self.log.warning(
                "%s was changed at %s, after the time it gives (%s): dated by that change",
                name,
                changed,
                record["timestamp"],
            )
            record["timestamp"] = changed
            self.redated[path] = changed
        return record

    def get_size(self, root):
        """The size of a submission's files (nbgrader's but for the race): the student may rename
        or remove a file between the listing and the look at it, which would fail nbgrader's
        (os.path.getsize) and with it the collect of every student; such a file counts for
        nothing here. Links count for nothing, as in nbgrader's."""
        total = 0
        for folder, _, files in os.walk(root):
            for name in files:
                with contextlib.suppress(OSError):
                    info = os.lstat(os.path.join(folder, name))
                    if stat.S_ISREG(info.st_mode):
                        total += info.st_size
        return total

    def do_copy(self, src, dest, log=None):
        """nbgrader's copy of a submission (its size, ignore, include and file size limits) but for
        what is neither a file nor a folder: the grader copies, and the submission (0777,
        nbgrader's) is its student's to add to. A link would copy what it points to, which the
        grader may read and the student not (the course's solutions, another's submission), as
        the student's work; a pipe would stop the collect for everyone. (The exchange is no
        group-shared one: each course's part is its grader's.)

        A submission that cannot be copied (too large, nested too deep, ...) is left, logged, and
        the collect goes on with the other students': one student cannot stop everyone's.

        Each folder and file is opened without following a link (O_NOFOLLOW, relative to its
        folder's descriptor) and what was opened is checked, not the name: the student may swap a
        file or folder for a link at any time, between a check by name and a copy by name too.
        The submission's own folder must still be its student's when opened."""
        try:
            self._copy_submission(src, dest)
            if src in self.redated:
                # What autograde reads for lateness: the change's time, not the student's.
                when = self.redated[src].replace(tzinfo=datetime.timezone.utc).strftime(self.timestamp_format)
                with open(os.path.join(dest, "timestamp.txt"), "w") as file:
                    file.write(when)
        except (OSError, RuntimeError) as error:  # RecursionError is a RuntimeError
            self.log.error("Not collected: %s could not be copied (%s)", src, type(error).__name__)
            shutil.rmtree(dest, ignore_errors=True)

    def _copy_submission(self, src, dest):
        size = self.get_size(src)
        if size > 1000 * self.coursedir.max_dir_size:
            self.log.error("Directory size is too big")
            raise RuntimeError(
                f"Directory size is too big. Size is {size}, maximum size is {1000 * self.coursedir.max_dir_size}"
            )
        nbgrader_s = ignore_patterns(
            exclude=self.coursedir.ignore,
            include=self.coursedir.include,
            max_file_size=self.coursedir.max_file_size,
            log=self.log,
        )
        student = os.path.basename(src).rsplit("+", 3)[0]
        try:
            top = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            self.log.warning("Not collected: %s is no longer a folder (%s)", src, error)
            return
        try:
            info = os.fstat(top)
            try:
                owner = pwd.getpwuid(info.st_uid).pw_name
            except KeyError:
                owner = None
            if owner != student:
                self.log.warning("Not collected: %s is no longer a submission of %s", src, student)
                return
            self._copy_folder(top, src, dest, nbgrader_s, info)
        finally:
            os.close(top)

    OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK

    def _copy_folder(self, folder: int, path: str, dest: str, ignore, info: os.stat_result) -> None:
        """The folder open as descriptor folder (found at path) copied to dest: its files and
        folders, each opened without following a link and checked as opened."""
        os.makedirs(dest)
        names = sorted(os.listdir(folder))
        ignored = set(ignore(path, names))
        for name in names:
            if name in ignored:
                continue
            try:
                fd = os.open(name, self.OPEN_FLAGS, dir_fd=folder)
            except OSError:
                # A link (ELOOP), a socket (ENXIO), or gone since it was listed.
                self.log.warning("Not collected: %s, not a file nor a folder", os.path.join(path, name))
                continue
            try:
                found = os.fstat(fd)
                if stat.S_ISDIR(found.st_mode):
                    self._copy_folder(fd, os.path.join(path, name), os.path.join(dest, name), ignore, found)
                elif stat.S_ISREG(found.st_mode):
                    self._copy_file(fd, os.path.join(dest, name), found)
                else:
                    self.log.warning("Not collected: %s, not a file nor a folder", os.path.join(path, name))
            finally:
                os.close(fd)
        os.chmod(dest, stat.S_IMODE(info.st_mode) & 0o777 | 0o700)
        os.utime(dest, ns=(info.st_atime_ns, info.st_mtime_ns))

    @staticmethod
    def _copy_file(fd: int, dest: str, info: os.stat_result) -> None:
        with open(fd, "rb", closefd=False) as source, open(dest, "xb") as target:
            shutil.copyfileobj(source, target)
        os.chmod(dest, stat.S_IMODE(info.st_mode) & 0o777 | 0o600)
        os.utime(dest, ns=(info.st_atime_ns, info.st_mtime_ns))

    def chosen(self, records: list[dict]) -> dict:
        """The newest, or with before_duedate the newest before the due date if there is one."""
        records = self._sort_by_timestamp(records)
        if self.duedate is not None and self.before_duedate:
            in_time = [record for record in records if record["timestamp"] <= self.duedate]
            return (in_time or records)[0]
        return records[0]


def last_change(root: str) -> datetime.datetime:
    """The latest change (ctime, UTC) of the folder root and of anything in it, links not followed;
    what cannot be read counts for nothing. Without recursion: a student's folders may nest deep."""
    latest, folders = os.lstat(root).st_ctime, [root]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            latest = max(latest, info.st_ctime)
            if stat.S_ISDIR(info.st_mode):
                folders.append(entry.path)
    return datetime.datetime.fromtimestamp(latest, datetime.timezone.utc).replace(tzinfo=None)


EXCHANGE_CLASSES = {
    "exchange": Exchange,
    "fetch_assignment": FetchAssignment,
    "fetch_feedback": FetchFeedback,
    "release_assignment": ReleaseAssignment,
    "release_feedback": ReleaseFeedback,
    "list": List,
    "submit": Submit,
    "collect": Collect,
}


def configure(c, courses_file: str) -> None:
    """nbgrader's configuration (c) for whoever runs it: the exchange for everyone, and for a
    course's grader account its course and course folder."""
    with open(courses_file) as file:
        data = json.load(file)
    c.Exchange.root = data["exchange_root"]
    c.Exchange.path_includes_course = True
    for kind, exchange_class in EXCHANGE_CLASSES.items():
        setattr(c.ExchangeFactory, kind, f"{exchange_class.__module__}.{exchange_class.__qualname__}")
    course = data["graders"].get(pwd.getpwuid(os.getuid()).pw_name)
    if course:
        c.CourseDirectory.course_id = course["course"]
        c.CourseDirectory.root = course["home"]
